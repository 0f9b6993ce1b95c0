"""The Windows tray app under Wine on a virtual X display, used as a person would: it opens its dashboard, its
icon docks in the system tray (``trayer``), its menu turns start at login on and off (the Run value written and
removed), and Quit ends it and its engine with nothing left running and ``running.json`` removed.

Wine draws each Windows window as an X window (class ``ollacacheapp.exe``) and docks tray icons through
XEmbed into the X tray, as a window of ``explorer.exe`` inside trayer's panel; the menu is driven with the
keyboard from its last item up (Quit, then Start at login), as its order is the tray's own.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
from packaging_steps import BuildError
from packaging_wine import Wine
from packaging_winsmoke import ENGINE_ONLY, RUN_KEY, CheckFailed, data_folder, run_value

from core.cli.selftest import read_lines
from core.control import running

WAIT_S = 90.0
_WINDOW = re.compile(
    r'^\s+(?P<id>0x[0-9a-f]+) (?P<name>"[^"]*"|\(has no name\)): \((?P<classes>[^)]*)\)\s+'
    r"(?P<w>\d+)x(?P<h>\d+)\+-?\d+\+-?\d+\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)",
    re.MULTILINE,
)
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Poll ``probe`` until it gives something; a :class:`CheckFailed` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None or found is False:
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.2)
    return found


@contextlib.contextmanager
def virtual_display(log: Path) -> Iterator[str]:
    """A new Xvfb display with trayer as its system tray; its name (``:N``)."""
    read, write = os.pipe()
    with open(log, "w") as output:
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-noreset", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=output,
            stderr=output,
        )
        os.close(write)
        with os.fdopen(read) as answer:
            name = f":{answer.readline().strip()}"
        tray = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "28"],
            env={**os.environ, "DISPLAY": name},
            stdout=output,
            stderr=output,
        )
        try:
            wait_for("trayer's panel", lambda: bool(_windows(name, "panel")))
            yield name
        finally:
            for process in (tray, xvfb):
                process.terminate()
                process.wait(30)


def _tree(display: str) -> str:
    """``xwininfo``'s tree of every window on ``display``."""
    return subprocess.run(
        ["xwininfo", "-root", "-tree"], env={**os.environ, "DISPLAY": display}, capture_output=True, text=True
    ).stdout


def _windows(display: str, name: str | None = None) -> list[re.Match[str]]:
    """The windows on ``display`` (all, or those called ``name``), with their absolute positions."""
    return [found for found in _WINDOW.finditer(_tree(display)) if name is None or found["name"] == f'"{name}"']


def _tray_icon(display: str) -> tuple[int, int] | None:
    """The centre of the icon Wine docked in trayer's panel, if there is one."""
    tree = _tree(display)
    panel = tree[tree.find('"panel"') :]
    for found in _WINDOW.finditer(panel):
        if "explorer.exe" in found["classes"] and int(found["w"]) > 4:
            return int(found["x"]) + int(found["w"]) // 2, int(found["y"]) + int(found["h"]) // 2
    return None


def _app_windows(display: str) -> list[tuple[int, int]]:
    """The sizes of the app's shown windows called Ollacache (the dashboard, an open menu); Qt keeps a closed
    menu's window, unmapped."""
    shown = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--classname", "ollacacheapp.exe"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
    ).stdout.split()
    ids = {int(window) for window in shown}
    return [
        (int(found["w"]), int(found["h"])) for found in _windows(display, "Ollacache") if int(found["id"], 16) in ids
    ]


def _menu_shown(display: str) -> bool:
    return any(width < 600 and height < 600 for width, height in _app_windows(display))


def _menu(display: str, icon: tuple[int, int], keys: list[str], shot: Path | None = None) -> None:
    """Open the tray icon's menu with a right click and press ``keys`` in it (a screenshot first, if asked)."""
    env = {**os.environ, "DISPLAY": display}
    wait_for("the previous menu to close", lambda: not _menu_shown(display))

    def right_click() -> bool:
        subprocess.run(["xdotool", "mousemove", str(icon[0]), str(icon[1]), "click", "3"], env=env, check=True)
        with contextlib.suppress(CheckFailed):
            return wait_for("the tray menu", lambda: _menu_shown(display), timeout=5)
        return False

    # a click in the first seconds after the icon docks can go unanswered: click again until the menu shows
    wait_for("the tray menu after right clicks on the icon", right_click)
    if shot is not None:
        screenshot(display, shot)
    subprocess.run(["xdotool", "key", "--delay", "150", *keys], env=env, check=True)


def screenshot(display: str, path: Path) -> None:
    """The whole screen as a PNG, for a person to look at (ImageMagick's ``import``), when it is installed."""
    if shutil.which("import"):
        subprocess.run(
            ["import", "-window", "root", str(path)], env={**os.environ, "DISPLAY": display}, capture_output=True
        )


def tray(wine: Wine, folder: Path, display: str, shots: Path) -> str:
    """The tray app checked as the module says; what was seen."""
    data = data_folder(wine)
    shutil.rmtree(data, ignore_errors=True)
    wine.run(["reg", "delete", RUN_KEY, "/v", "Ollacache", "/f"], timeout=60)
    wine.display = display
    # its output to a pipe that a thread drains: under Wine a windowed program whose output goes to a file
    # stops at "Failed to start embedded python interpreter"
    app = wine.popen([folder / "OllacacheApp.exe"], env={**ENGINE_ONLY, "OLLACACHE_PORT": "0"})
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(app.stdout, lines), daemon=True)
    reader.start()
    try:
        url = wait_for("the engine's running.json", lambda: running.read_url(data))
        health = httpx.get(f"{url}/-/health", timeout=30, trust_env=False)
        if health.status_code != 200:
            raise CheckFailed(f"the tray app's engine answered /-/health with {health.status_code}")
        dashboard = wait_for(
            "the dashboard window", lambda: next((size for size in _app_windows(display) if size[0] >= 600), None)
        )
        icon = wait_for("the icon in the system tray", lambda: _tray_icon(display))
        _menu(display, icon, ["Up", "Up", "Return"], shots / "windows-tray.png")  # Start at login
        written = wait_for("the Run value", lambda: run_value(wine))
        _menu(display, icon, ["Up", "Up", "Return"])
        wait_for("the Run value's removal", lambda: run_value(wine) is None)
        _menu(display, icon, ["Up", "Return"])  # Quit Ollacache
        code = app.wait(WAIT_S)
        if not wine.wait_idle(WAIT_S):
            raise CheckFailed("Windows programs were still running after Quit")
    except (CheckFailed, BuildError, httpx.HTTPError, subprocess.TimeoutExpired) as error:
        wine.kill()  # the app and the engine it started
        reader.join(30)
        said = [line for line in (lines.get_nowait() for _ in range(lines.qsize())) if line is not None]
        raise CheckFailed(f"{error}; the app said: {' | '.join(said[-10:])}") from error
    finally:
        wine.display = None
        reader.join(30)
    if code != 0 or (data / running.RUNTIME_FILE).exists():
        raise CheckFailed(
            f"Quit: the app exited {code}, running.json "
            f"{'left behind' if (data / running.RUNTIME_FILE).exists() else 'removed'}"
        )
    return (
        f"dashboard {dashboard[0]}x{dashboard[1]}, icon in the tray at {icon}, /-/health 200 on {url}; start at "
        f"login wrote {written!r} and removed it; Quit: exit 0, nothing left running, running.json removed"
    )
