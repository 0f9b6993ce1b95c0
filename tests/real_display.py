"""A real X display with a real system tray (Xvfb with ``trayer``) for tests of the real app, and what the
window system sees on it: windows by name, whether they are shown, icons docked in the tray."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from core.control import running
from tests.harness import BOUND_S, wait_for

TOOLS = ("Xvfb", "trayer", "xwininfo")
needs_display = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS), reason="needs Xvfb, trayer and xwininfo (.ci/run installs them)"
)
_WINDOW = re.compile(
    r"^(?P<indent> +)(?P<id>0x[0-9a-f]+) (?P<name>\"[^\"]*\"|\(has no name\)).*?"
    r"(?P<width>\d+)x(?P<height>\d+)\+",
    re.MULTILINE,
)


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
        return [
            (len(found["indent"]), found["id"], int(found["width"]), int(found["height"]))
            for found in _WINDOW.finditer(self._xwininfo("-root", "-tree"))
            if found["name"] == f'"{name}"'
        ]

    def shown_top_levels(self, name: str) -> list[tuple[int, int]]:
        """The sizes of the viewable top-level windows called ``name`` (the root's children)."""
        top = min((depth for depth, *_ in self.windows("trayer")), default=5)
        return [
            (width, height)
            for depth, window, width, height in self.windows(name)
            if depth == top and self.viewable(window)
        ]

    def docked_icons(self, name: str) -> int:
        """Viewable windows called ``name`` inside trayer's panel."""
        tree = self._xwininfo("-root", "-tree")
        panel = tree[tree.index('"panel"') :]
        return sum(
            1 for found in _WINDOW.finditer(panel) if found["name"] == f'"{name}"' and self.viewable(found["id"])
        )


def _answers(display: Display) -> bool:
    return subprocess.run(["xwininfo", "-root"], env=display.env, capture_output=True).returncode == 0


def _start_tray(display: Display, log: Path) -> subprocess.Popen[bytes]:
    """trayer, once its panel is on the display.

    It can still find the display closed just after Xvfb said it was ready (about one start in 40, "cannot
    open display"); it then exits at once, and is started again rather than waited for in vain.
    """
    for _ in range(3):
        with open(log, "wb") as errors:
            tray = subprocess.Popen(
                ["trayer", "--edge", "top", "--SetDockType", "true"], env=display.env, stderr=errors
            )
        wait_for(lambda tray=tray: tray.poll() is not None or display.windows("panel"), "trayer's panel")
        if tray.poll() is None:
            return tray
    raise AssertionError(f"trayer exited without showing its panel: {log.read_text(errors='replace')}")


@pytest.fixture
def display(tmp_path: Path) -> Iterator[Display]:
    read, write = os.pipe()
    # -noreset: the server stays up between clients (it resets when the last one leaves, refusing new ones
    # for a moment, and the checks here connect and leave all the time)
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        shown = Display(":" + pipe.readline().strip())
    try:
        wait_for(lambda: _answers(shown), "Xvfb to answer")
        tray = _start_tray(shown, tmp_path / "trayer.log")
    except BaseException:
        xvfb.terminate()
        xvfb.wait(timeout=BOUND_S)
        raise
    try:
        yield shown
    finally:
        for process in (tray, xvfb):
            process.terminate()
            process.wait(timeout=BOUND_S)


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
