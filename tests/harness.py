"""Running the real proxy for tests: in a thread of this process, or as an `ollacache serve` subprocess.

Both listen on 127.0.0.1 with port 0 and are waited on by condition (the server's ready event, or its
"serving on" line), never by sleeping.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from core.config.settings import load
from core.control import token as tokens
from core.engine.server import _Server, build_server

ROOT = Path(__file__).resolve().parents[1]
BOUND_S = 60.0  # the longest a test waits for something a server does on its own clock (a bound, not a measure)
SERVING = re.compile(r"ollacache: serving on (https?://\S+)")


@dataclass
class RunningProxy:
    """A proxy under test: its URL, control token, and (in-process) its engine."""

    url: str
    token: str
    server: _Server | None = None
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def stats(self) -> dict[str, object]:
        return httpx.get(f"{self.url}/-/stats", timeout=30.0).json()


@contextmanager
def proxy_in_thread(
    upstream: str, configure: Callable[[_Server], None] | None = None, **flags: str
) -> Iterator[RunningProxy]:
    """The proxy served by uvicorn in a background thread of this process (fast, and its engine is reachable).

    ``configure`` may adjust the server before it starts (e.g. a faster supervision policy).
    """
    settings = load({"proxy.port": "0", "proxy.upstream": upstream, **flags})
    server = build_server(settings)
    if configure is not None:
        configure(server)
    thread = threading.Thread(target=server.run, name="ollacache-proxy", daemon=True)
    thread.start()
    while not server.ready.wait(0.05):
        if not thread.is_alive():
            raise RuntimeError("the proxy stopped before it was ready")
    try:
        yield RunningProxy(server.url, server.engine.token, server=server)
    finally:
        server.stop_from_another_thread()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the proxy did not shut down"


@contextmanager
def proxy_process(upstream: str, *args: str, env: Mapping[str, str] | None = None) -> Iterator[RunningProxy]:
    """`python -m core serve` as a real subprocess; stopped with SIGTERM at the end if still running."""
    command = [sys.executable, "-m", "core", "serve", "--port", "0", "--upstream", upstream, *args]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    for line in process.stdout:
        output.append(line)
        if match := SERVING.search(line):
            break
    else:
        process.wait(timeout=60)
        process.stdout.close()
        raise RuntimeError("ollacache serve exited before serving:\n" + "".join(output))
    token = tokens.read(Path(os.environ["OLLACACHE_CONFIG_DIR"])) or ""
    running = RunningProxy(match.group(1), token, process=process, output=output)
    # read all along: a full pipe would stall the engine's logging, and a failing test shows what it said
    reader = threading.Thread(target=_read_into, args=(process.stdout, output), daemon=True)
    reader.start()
    try:
        yield running
    except BaseException:
        _stop(process, reader)
        print("ollacache serve said:\n" + "".join(output))  # pytest shows it beside the failure
        raise
    finally:
        _stop(process, reader)


def _read_into(lines: IO[str], output: list[str]) -> None:
    for line in lines:
        output.append(line)


def _stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    reader.join(timeout=60)
    if process.stdout is not None:
        process.stdout.close()


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a server that must be told its port before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it returns something truthy, within :data:`BOUND_S`; its result."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


Event = tuple[str, dict[str, Any]]


def events_until(
    url: str, during: Callable[[], object], wanted: Callable[[str], bool], enough: Callable[[list[Event]], bool]
) -> list[Event]:
    """The events named as ``wanted`` on ``url``'s ``/-/events`` while ``during()`` runs (subscribed first, so
    what ``during`` causes is pushed), read until ``enough`` of them have come."""
    seen: list[Event] = []
    with httpx.stream("GET", url + "/-/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "event: stats"
        during()
        name = "stats"
        for line in lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and wanted(name):
                seen.append((name, json.loads(line.removeprefix("data: "))))
                if enough(seen):
                    break
    return seen


def events_named(
    url: str, count: int, during: Callable[[], object], ignore: tuple[str, ...] = ("stats", "requests_did_finish")
) -> list[Event]:
    """The first ``count`` events not named in ``ignore`` while ``during()`` runs (see :func:`events_until`). The
    batches of finished requests are left out by default: one may come a quarter of a second after requests made
    before."""
    return events_until(url, during, lambda name: name not in ignore, lambda seen: len(seen) == count)


def packaging_module(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module of packaging/ (build.py and the modules beside it), loaded as build.py runs them."""
    monkeypatch.syspath_prepend(str(ROOT / "packaging"))  # build.py imports the modules beside it
    spec = importlib.util.spec_from_file_location(f"ollacache_{name}", ROOT / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
