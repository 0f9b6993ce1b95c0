"""The dashboard under a stream of hits, against a real engine: it follows batches of finished requests (a few
events a second however many requests), and once the stream stops its totals are the engine's, exactly."""

from __future__ import annotations

import httpx
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.dashboard.requests import MAX_ROWS
from desktop.dashboard_window import build_dashboard
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
HITS = 1500


def test_after_a_stream_of_hits_the_dashboards_totals_are_the_engines(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    window.show()
    batches: list[int] = []
    tray_app.feed.requests_did_finish.connect(lambda batch: batches.append(batch["count"]))
    with httpx.Client(base_url=tray_app.engine.url) as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        for _ in range(HITS):
            http.post("/api/chat", json=CHAT)
        engine = http.get("/-/stats").json()["totals"]
    assert engine["requests"] == HITS + 1
    qtbot.waitUntil(lambda: sum(batches) == HITS + 1, timeout=WAIT_MS)  # every request told, none lost
    assert len(batches) < (HITS + 1) // 10  # in batches, not one event each
    qtbot.waitUntil(lambda: window.cards.rate.detail.text() == f"{HITS + 1:,} requests in total", timeout=WAIT_MS)
    assert window.cards.hit_rate.detail.text() == f"{HITS:,} hits, 1 miss"
    rows = window.requests.model
    assert 0 < rows.rowCount() <= MAX_ROWS and rows.index(0, 4).data().endswith("HIT")  # the newest, bounded
    assert tray_app.errors.last is None
