"""The real app on a real X display with a real system tray (Xvfb with ``trayer``), seen from outside as
the window system sees it: the icon docks in the tray, a user's launch opens the dashboard and nothing
else, ``--hidden`` opens no window, and SIGTERM (what a logout sends) quits the app and its engine."""

from __future__ import annotations

import subprocess
import sys

from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, wait_for
from tests.real_display import Display, display, needs_display, quit_by_sigterm, serving  # noqa: F401 - a fixture

pytestmark = needs_display


def launch(display: Display, upstream: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**display.env, "OLLACACHE_UPSTREAM": upstream, "OLLACACHE_PORT": "0"}
    return subprocess.Popen([sys.executable, "-m", "desktop", *args], cwd=ROOT, env=env)


def test_a_users_launch_docks_the_icon_and_opens_the_dashboard_only(
    display: Display, upstream: tuple[FakeOllama, str]
) -> None:
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
