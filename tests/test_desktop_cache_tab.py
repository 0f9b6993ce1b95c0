"""The dashboard's Cache tab against a real engine process: what the cache holds, a bad file said plainly with
nothing sent, a warm-up's live progress from the event feed, then its summary and failures."""

from __future__ import annotations

import json
from pathlib import Path

import httpx  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from core.control import token as tokens  # noqa: E402
from desktop.app import TrayApp  # noqa: E402
from desktop.dashboard.cache_tab import EMPTY  # noqa: E402
from desktop.dashboard_window import build_dashboard  # noqa: E402
from desktop.icons import IconState  # noqa: E402
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures; the platform first)
from tests.fakes.ollama_server import FakeOllama  # noqa: E402


def chat(text: str, model: str = "llama3.2") -> str:
    return json.dumps(
        {"endpoint": "/api/chat", "body": {"model": model, "messages": [{"role": "user", "content": text}]}}
    )


def test_the_cache_tab_warms_from_a_file_with_live_progress_then_lists_what_failed(
    behind_fake: str, upstream: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    fake = upstream[0]
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    window.show()
    tab = window.cache
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tray_app.feed.connected, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tab.entries.text() == "0 entries", timeout=WAIT_MS)
    assert tab.note.text() == EMPTY and tab.progress.isHidden() and tab.failures.isHidden()

    bad = tmp_path / "bad.jsonl"
    bad.write_text(chat("fine") + "\n" + '{"endpoint": "/api/tags", "body": {}}\n')
    assert not tab.warm_from(bad)
    assert tab.error.isVisible() and tab.error.text().startswith(f"{bad} line 2: the endpoint must be one of")
    assert tab.error.text().endswith("Nothing was sent.")
    assert fake.total_calls("/api/chat") == 0

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join([chat("one"), chat("two"), "", chat("three", model="missing:7b"), chat("four")]) + "\n")
    fake.configure(hang=True)  # every request waits upstream: the run is seen under way
    assert tab.warm_from(good)
    assert tab.error.isHidden()
    qtbot.waitUntil(lambda: tab.running, timeout=WAIT_MS)
    assert tab.progress.isVisible() and tab.progress.maximum() == 4 and tab.progress.value() == 0
    assert not tab.warm_button.isEnabled()
    assert tab.note.text() == "Warming the cache from good.jsonl: 4 requests, 4 at a time."
    # missing:7b is a model the proxy does not know: it first waits (up to 5 s) for the hanging model list
    assert fake.wait_for_calls(4, "/api/chat", timeout=WAIT_MS / 1000)
    fake.configure(hang=False)
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.progress.value() == 4 and tab.warm_button.isEnabled()
    assert tab.counts.text().startswith("Warmed 4 requests in ")
    assert tab.counts.text().endswith(": 3 sent, 0 already cached, 1 failed")
    assert tab.failures.isVisible() and tab.failures.rowCount() == 1
    line, route, model, why = (tab.failures.item(0, column).text() for column in range(4))
    assert (line, route, model) == ("4", "/api/chat", "missing:7b") and why.startswith("HTTP 404: ")
    qtbot.waitUntil(lambda: tab.entries.text() == "3 entries", timeout=WAIT_MS)

    # the same file again: everything that worked is already cached
    assert tab.warm_from(good)
    qtbot.waitUntil(lambda: tab.counts.text().endswith(": 0 sent, 3 already cached, 1 failed"), timeout=WAIT_MS)


def test_a_refused_warm_up_is_said_in_the_tab(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: tray_app.feed.connected, timeout=WAIT_MS)
    token = tokens.read(tray_app.settings.config_dir)
    httpx.post(f"{tray_app.engine.url}/-/pause", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    file = tmp_path / "w.jsonl"
    file.write_text(chat("x") + "\n")
    assert window.cache.warm_from(file)
    qtbot.waitUntil(lambda: "caching is paused" in window.cache.error.text(), timeout=WAIT_MS)
    assert window.cache.error.text().startswith("Could not start the warm-up: ")


def test_ctrl_6_opens_the_cache_tab(behind_fake: str, tray_app: TrayApp, qtbot: QtBot) -> None:
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, "6", modifier=Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.cache
