"""Shared fixtures: every test gets its own config and cache directories."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import RunningProxy, proxy_in_thread
from tests.once_per_run import machine_wide

# The engine's tests run without the desktop extra (`pip install -e '.[test]'`); the desktop's need PySide6.
if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("qasync") is None:
    collect_ignore_glob = ["test_desktop_*.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (the Linux build) first: with ``--dist loadfile --no-loadscope-reorder`` their worker
    starts the build at once and the other worker runs the rest beside it, instead of the build running alone
    at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean Ollacache environment: no OLLACACHE_* from outside, private config, cache and log dirs."""
    for name in [name for name in os.environ if name.startswith("OLLACACHE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OLLACACHE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OLLACACHE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OLLACACHE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # start at login writes its entry there
    # never start a real Ollama that happens to be installed; supervision tests opt in with the fake one
    monkeypatch.setenv("OLLACACHE_MANAGE_OLLAMA", "never")
    return tmp_path


@pytest.fixture
def default_ports() -> Iterator[None]:
    """Ollama's default address (127.0.0.1:11434) and the proxy's (11435) belong to the machine: a test that
    reads or takes them holds them alone, whichever worker or run it is in."""
    with machine_wide("default-ports"):
        yield


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOllama, str]]:
    """A fake Ollama server on 127.0.0.1:0 in a thread: (fake, base URL)."""
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def proxy(upstream: tuple[FakeOllama, str]) -> Iterator[RunningProxy]:
    """The real proxy, in a thread of the test process, in front of the fake upstream."""
    with proxy_in_thread(upstream[1]) as running:
        yield running


@pytest.fixture
def fake(upstream: tuple[FakeOllama, str]) -> FakeOllama:
    return upstream[0]
