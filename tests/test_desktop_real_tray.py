"""The real app on a real X display with a real system tray (Xvfb with ``trayer``), seen from outside as
the window system sees it: the icon docks in the tray, a user's launch opens the dashboard and nothing
else, ``--hidden`` opens no window, and SIGTERM (what a logout sends) quits the app and its engine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from core.control import running
from tests.fakes.ollama_server import FakeOllama
from tests.harness import BOUND_S, ROOT, wait_for

TOOLS = ("Xvfb", "trayer", "xwininfo")
pytestmark = pytest.mark.skipif(not all(shutil.which(tool) for tool in TOOLS),
                                reason="needs Xvfb, trayer and xwininfo (.ci/run installs them)")
_WINDOW = re.compile(r"^(?P<indent> +)(?P<id>0x[0-9a-f]+) (?P<name>\"[^\"]*\"|\(has no name\)).*?"
                     r"(?P<width>\d+)x(?P<height>\d+)\+", re.MULTILINE)


class Display:
    """An X display and what is on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.env = {**os.environ, "DISPLAY": name}
        self.env.pop("QT_QPA_PLATFORM", None)
        self.env.pop("WAYLAND_DISPLAY", None)

    def _xwininfo(self, *args: str) -> str:
        return subprocess.run(["xwininfo", *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def viewable(self, window: str) -> bool:
        return "Map State: IsViewable" in self._xwininfo("-id", window)

    def windows(self, name: str) -> list[tuple[int, str, int, int]]:
        """(depth, id, width, height) of every window called ``name``, viewable or not."""
        return [(len(found["indent"]), found["id"], int(found["width"]), int(found["height"]))
                for found in _WINDOW.finditer(self._xwininfo("-root", "-tree"))
                if found["name"] == f'"{name}"']

    def shown_top_levels(self, name: str) -> list[tuple[int, int]]:
        """The sizes of the viewable top-level windows called ``name`` (the root's children)."""
        top = min((depth for depth, *_ in self.windows("trayer")), default=5)
        return [(width, height) for depth, window, width, height in self.windows(name)
                if depth == top and self.viewable(window)]

    def docked_icons(self, name: str) -> int:
        """Viewable windows called ``name`` inside trayer's panel."""
        tree = self._xwininfo("-root", "-tree")
        panel = tree[tree.index('"panel"'):]
        return sum(1 for found in _WINDOW.finditer(panel)
                   if found["name"] == f'"{name}"' and self.viewable(found["id"]))


@pytest.fixture
def display(tmp_path: Path) -> Iterator[Display]:
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        shown = Display(":" + pipe.readline().strip())
    tray = subprocess.Popen(["trayer", "--edge", "top", "--SetDockType", "true"], env=shown.env,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: shown.windows("panel"), "trayer's panel")
        yield shown
    finally:
        for process in (tray, xvfb):
            process.terminate()
            process.wait(timeout=BOUND_S)


def launch(display: Display, upstream: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**display.env, "OLLACACHE_UPSTREAM": upstream, "OLLACACHE_PORT": "0"}
    return subprocess.Popen([sys.executable, "-m", "desktop", *args], cwd=ROOT, env=env)


def serving(app: subprocess.Popen[bytes]) -> psutil.Process:
    """The engine child, once it answers."""
    config = Path(os.environ["OLLACACHE_CONFIG_DIR"])

    def answers() -> str | None:
        url = running.read_url(config)
        try:
            return url if url and httpx.get(url + "/-/health").status_code == 200 else None
        except httpx.HTTPError:
            return None

    wait_for(answers, "the engine to answer")
    [engine] = psutil.Process(app.pid).children()
    return engine


def quit_by_sigterm(app: subprocess.Popen[bytes], engine: psutil.Process) -> None:
    app.send_signal(signal.SIGTERM)
    assert app.wait(timeout=BOUND_S) == 0
    engine.wait(timeout=BOUND_S)  # stopped with the app, not left behind


def test_a_users_launch_docks_the_icon_and_opens_the_dashboard_only(
        display: Display, upstream: tuple[FakeOllama, str]) -> None:
    app = launch(display, upstream[1])
    engine = serving(app)
    wait_for(lambda: display.docked_icons("Ollacache") == 1, "the icon in the tray")
    wait_for(lambda: display.shown_top_levels("Ollacache"), "the dashboard")
    [(width, height)] = display.shown_top_levels("Ollacache")  # no error balloon beside it
    assert width >= 640 and height >= 400
    quit_by_sigterm(app, engine)


def test_a_hidden_launch_opens_no_window(display: Display, upstream: tuple[FakeOllama, str]) -> None:
    app = launch(display, upstream[1], "--hidden")
    engine = serving(app)
    wait_for(lambda: display.docked_icons("Ollacache") == 1, "the icon in the tray")
    assert display.shown_top_levels("Ollacache") == []
    quit_by_sigterm(app, engine)
