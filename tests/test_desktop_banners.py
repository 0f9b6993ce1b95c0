"""The dashboard's banners against a real engine: caching paused (and Resume from the banner), offline replay,
and no banner while all is well."""

from __future__ import annotations

import httpx
import pytest
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.dashboard.banners import OFFLINE, PAUSED
from desktop.dashboard_window import build_dashboard
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)
from tests.harness import free_port

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}


def test_pause_shows_a_banner_on_the_dashboard_and_its_resume_caches_again(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    banners = window.banners
    qtbot.waitUntil(lambda: tray_app.feed.current is not None, timeout=WAIT_MS)
    assert banners.paused.isHidden() and banners.offline.isHidden() and banners.store.isHidden()
    tray_app.tray.menu.aboutToShow.emit()
    tray_app.tray.actions["pause"].trigger()
    qtbot.waitUntil(lambda: not banners.paused.isHidden(), timeout=WAIT_MS)
    assert banners.paused.text.text() == PAUSED
    assert httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] == "BYPASS"
    assert banners.paused.button is not None
    banners.paused.button.click()
    qtbot.waitUntil(banners.paused.isHidden, timeout=WAIT_MS)
    assert httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] == "MISS"
    assert tray_app.errors.last is None


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine the app starts replays offline, in front of an address where nothing answers."""
    monkeypatch.setenv("OLLACACHE_OFFLINE", "1")
    monkeypatch.setenv("OLLACACHE_UPSTREAM", f"http://127.0.0.1:{free_port()}")


def test_offline_replay_has_its_banner(offline: None, tray_app: TrayApp, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: tray_app.feed.current is not None, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: not window.banners.offline.isHidden(), timeout=WAIT_MS)
    assert window.banners.offline.text.text() == OFFLINE and window.banners.paused.isHidden()
