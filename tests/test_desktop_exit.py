"""The tray app as a user starts it, in a process of its own: `python -m desktop` and `ollacache tray`
start the engine and quit on SIGTERM with exit 0, nothing on stderr and the engine stopped; with no
display, `ollacache tray` says so and serves headless."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from core.cli.commands import has_display
from tests.fakes.ollama_server import FakeOllama
from tests.harness import BOUND_S, ROOT, SERVING, wait_for


def engine_of(app: subprocess.Popen[bytes], config_dir: Path) -> Callable[[], int | None]:
    """The pid of the app's engine child, once it answers /-/health."""

    def check() -> int | None:
        assert app.poll() is None, "the app exited"
        try:
            url = json.loads((config_dir / "running.json").read_text())["url"]
            pid = httpx.get(url + "/-/health", timeout=5).json()["pid"]
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return None
        return pid if pid in {child.pid for child in psutil.Process(app.pid).children()} else None

    return check


@pytest.mark.parametrize("command", [["-m", "desktop"], ["-m", "core", "tray"]], ids=["python -m desktop", "tray"])
def test_the_app_quits_on_sigterm_cleanly_and_stops_its_engine(
    command: list[str], upstream: tuple[FakeOllama, str], private_dirs: Path
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OLLACACHE_PORT": "0", "OLLACACHE_UPSTREAM": upstream[1]}
    app = subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        engine = wait_for(engine_of(app, private_dirs / "config"), "the app's engine to answer")
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=BOUND_S)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0 and err == b""
    assert not psutil.pid_exists(engine) or psutil.Process(engine).status() == psutil.STATUS_ZOMBIE
    assert not (private_dirs / "config" / "running.json").exists()  # the engine exited cleanly too
    assert "serving on" in (private_dirs / "logs" / "engine.log").read_text()


def test_tray_without_a_display_says_so_and_serves(upstream: tuple[FakeOllama, str]) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env.update({"OLLACACHE_PORT": "0", "OLLACACHE_UPSTREAM": upstream[1]})
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "tray"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if match := SERVING.search(line):
                assert httpx.get(match.group(1) + "/-/health").status_code == 200
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=BOUND_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    assert lines[0].startswith("ollacache: no display") and "serve" in lines[0]


def test_a_display_is_found_where_a_gui_can_open() -> None:
    assert not has_display({}, "linux")
    assert has_display({"DISPLAY": ":0"}, "linux") and has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert has_display({}, "darwin") and has_display({}, "win32")
