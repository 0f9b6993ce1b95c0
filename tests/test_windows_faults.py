"""The Windows faults that can be shown on Linux: the engine runs without uvloop (which does not exist on
Windows), the data folders are one level deep there, the engine stops gracefully by a control call (a signal is
a hard kill on Windows), and the console and windowed executables are told apart by their PE headers. The
Windows build itself is tested under Wine (tests/test_windows_build.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from platformdirs import windows

from core.config.settings import APP_AUTHOR, APP_NAME
from core.control import running
from core.control.client import ControlClient, ControlError
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, SERVING, free_port, packaging_module, proxy_process, wait_for
from tests.test_supervisor_process import FAKE_OLLAMA, FAKE_PYTHON

WITHOUT_UVLOOP = """
import runpy, sys
sys.modules["uvloop"] = None  # as on Windows: no uvloop to import
sys.argv = ["ollacache", *sys.argv[1:]]
runpy.run_module("core", run_name="__main__")
"""
CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}


def test_the_engine_serves_from_the_cache_without_uvloop(upstream: tuple[FakeOllama, str]) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", WITHOUT_UVLOOP, "serve", "--port", "0", "--upstream", upstream[1]],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as engine:
        assert engine.stdout is not None
        try:
            url = next(match[1] for line in engine.stdout if (match := SERVING.search(line)))
            verdicts = [httpx.post(url + "/api/chat", json=CHAT, timeout=30).headers["x-cache"] for _ in range(2)]
        finally:
            engine.terminate()
    assert verdicts == ["MISS", "HIT"]


def test_the_windows_data_folders_name_the_app_once(monkeypatch: pytest.MonkeyPatch) -> None:
    local = "C:/Users/me/AppData/Local"
    monkeypatch.setattr(windows, "get_win_folder", lambda _csidl: local)
    dirs = windows.Windows(APP_NAME, APP_AUTHOR)
    assert Path(dirs.user_cache_dir) == Path(local, "ollacache", "Cache")
    assert Path(dirs.user_log_dir) == Path(local, "ollacache", "Logs")


def test_a_shutdown_call_stops_the_engine_as_sigterm_does_with_the_ollama_it_started(tmp_path: Path) -> None:
    """On Windows a signal is a hard kill: the app stops its engine with this call, so that the Ollama the
    engine started is stopped too and running.json goes."""
    env = {"OLLACACHE_MANAGE_OLLAMA": "auto", "OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA, **FAKE_PYTHON}
    with proxy_process(f"http://127.0.0.1:{free_port()}", env=env) as proxy:
        wait_for(lambda: httpx.get(proxy.url + "/-/health").json()["ollama"]["state"] == "running", "Ollama to run")
        ollama_pid = httpx.get(proxy.url + "/-/health").json()["ollama"]["pid"]
        with ControlClient(proxy.url, "not-the-token") as stranger, pytest.raises(ControlError):
            stranger.shutdown()  # state-changing: the token is required
        with ControlClient(proxy.url, proxy.token) as client:
            assert client.shutdown() == {"stopping": True}
        assert proxy.process is not None and proxy.process.wait(timeout=60) == 0
    assert not psutil.pid_exists(ollama_pid) or psutil.Process(ollama_pid).status() == psutil.STATUS_ZOMBIE
    config = Path(os.environ["OLLACACHE_CONFIG_DIR"])
    assert running.read_url(config) is None  # running.json removed


def test_a_console_and_a_windowed_executable_are_told_apart_by_their_pe_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console ollacache.exe and the windowed OllacacheApp.exe of a Windows build are checked this way (real
    Windows launchers that pip ships stand in for them here)."""
    pe = packaging_module("packaging_pe", monkeypatch)
    launchers = Path(importlib.util.find_spec("pip").origin).parent / "_vendor" / "distlib"  # type: ignore[arg-type, union-attr]
    assert pe.pe_subsystem(launchers / "t64.exe") == pe.WINDOWS_CUI
    assert pe.pe_subsystem(launchers / "w64.exe") == pe.WINDOWS_GUI
    folder = tmp_path / "ollacache"
    folder.mkdir()
    (folder / "ollacache.exe").write_bytes((launchers / "w64.exe").read_bytes())  # linked as the wrong one
    (folder / "OllacacheApp.exe").write_bytes((launchers / "w64.exe").read_bytes())
    build = packaging_module("build", monkeypatch)
    assert pe.subsystem_problems(folder, build.WINDOWS_EXECUTABLES) == [
        "ollacache.exe is a windowed program, not a console one"
    ]
    (folder / "ollacache.exe").write_text("#!/bin/sh\n")
    assert pe.subsystem_problems(folder, build.WINDOWS_EXECUTABLES) == [
        "ollacache.exe is not a Windows executable (no MZ header)"
    ]
    assert len({name.lower() for name in build.WINDOWS_EXECUTABLES}) == 2  # distinct on Windows' file system
