"""The dashboard window, offscreen: what it shows of a real engine's /-/stats, its empty states, the requests
table, charts an hour long, the Ollama panel's buttons, the light/dark scheme and what it remembers."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt  # noqa: E402, I001 - after the platform is chosen
from PySide6.QtGui import QGuiApplication, QPalette  # noqa: E402
from PySide6.QtWidgets import QLabel, QPushButton  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from core.units import human_bytes, human_seconds  # noqa: E402
from desktop.dashboard import DashboardWindow  # noqa: E402
from desktop.dashboard.charts import MAX_POINTS, Series, TimeChart  # noqa: E402
from desktop.dashboard.requests import MAX_ROWS  # noqa: E402
from tests.dashboard_qt import dark_palette, settings_in, window_in  # sets the offscreen platform first
from tests.fakes.ollama_server import FakeOllama  # noqa: E402
from tests.harness import ROOT, RunningProxy, wait_for  # noqa: E402

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "options": {"temperature": 0},
    "stream": False,
}
EVENT = {
    "time": "2026-12-01T20:40:05+00:00",
    "client": "ollama-python",
    "model": "llama3.2:latest",
    "route": "/api/chat",
    "cache": "hit",
    "status": 200,
    "latency_ms": 1.234,
    "tokens": 1234,
    "saved_s": 2.5,
}


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> DashboardWindow:
    shown = window_in(tmp_path)
    qtbot.addWidget(shown)
    shown.show()
    return shown


def table_rows(table: Any) -> list[list[str]]:
    return [
        [table.item(row, column).text() for column in range(table.columnCount())] for row in range(table.rowCount())
    ]


def test_the_cards_show_what_a_real_engine_counted(window: DashboardWindow, proxy: RunningProxy) -> None:
    with proxy.client() as http:
        outcomes = [http.post("/api/chat", json=CHAT).headers["x-cache"] for _ in range(3)]
        stats = http.get("/-/stats").json()
    assert outcomes == ["MISS", "HIT", "HIT"]
    window.show_stats(stats)

    cards = window.cards
    assert cards.hit_rate.value.text() == "66.7 %"
    assert cards.hit_rate.detail.text() == "2 hits, 1 miss"
    assert cards.rate.detail.text() == "3 requests in total"
    assert cards.rate.value.text().endswith(" /min")
    assert cards.time_saved.value.text() == human_seconds(stats["totals"]["time_saved_s"])
    assert cards.tokens_saved.value.text() == f"{stats['totals']['tokens_saved']:,}"
    entries = stats["store"]["entries"]  # written to disk in the background: 0 or 1 by now
    assert cards.cache.value.text() == ("1 entry" if entries == 1 else f"{entries:,} entries")
    assert cards.cache.detail.text().startswith(f"{human_bytes(stats['store']['bytes'])} on disk")
    assert cards.ollama.value.text() == "● Running"  # attached to the fake: started elsewhere
    assert "will not stop it" in cards.ollama.detail.text()
    assert cards.welcome.isHidden()  # the welcome stays until the cache's first hit

    (model,) = stats["by_model"]
    assert table_rows(window.breakdown.models)[0][:4] == [model, "3", "2", "66.7 %"]
    assert window.ollama.version.text() == stats["ollama"]["version"]


def test_answers_shared_with_an_identical_request_in_flight_show_as_shared(
    window: DashboardWindow, proxy: RunningProxy, fake: FakeOllama
) -> None:
    assert proxy.server is not None
    flights = proxy.server.engine.proxy.flights
    fake.configure(hang=True)  # the first request is held upstream while two identical ones arrive
    with ThreadPoolExecutor(max_workers=3) as pool:
        sent = [pool.submit(httpx.post, proxy.url + "/api/chat", json=CHAT, timeout=30)]
        assert fake.wait_for_calls(1, "/api/chat")
        sent += [pool.submit(httpx.post, proxy.url + "/api/chat", json=CHAT, timeout=30) for _ in range(2)]
        wait_for(lambda: flights.following() == 2, "two requests following the first")
        fake.configure(hang=False)
        outcomes = [future.result().headers["x-cache"] for future in sent]
    outcomes.append(httpx.post(proxy.url + "/api/chat", json=CHAT, timeout=30).headers["x-cache"])
    assert outcomes == ["MISS", "SHARED", "SHARED", "HIT"]

    window.show_stats(httpx.get(proxy.url + "/-/stats").json())
    assert window.cards.hit_rate.value.text() == "75.0 %"  # three of four answered without a call of their own
    assert window.cards.hit_rate.detail.text() == "1 hit, 2 shared, 1 miss"
    assert table_rows(window.breakdown.models)[0][1:4] == ["4", "3", "75.0 %"]
    window.add_request({**EVENT, "cache": "SHARED"})
    assert window.requests.model.index(0, 4).data() == "◑ SHARED"


def test_before_any_answer_is_stored_the_welcome_says_what_to_do(window: DashboardWindow, proxy: RunningProxy) -> None:
    welcome = window.cards.welcome
    assert welcome.address.text() == "Starting the cache…"  # no address before the engine tells it
    assert welcome.copy.isHidden()
    window.show_stats(httpx.get(proxy.url + "/-/stats").json())
    assert welcome.isVisible() and welcome.title.text() == "Welcome to Ollacache"
    assert window.cards.hit_rate.value.text() == "–"
    assert window.cards.cache.value.text() == "0 entries"
    window.set_endpoint(proxy.url)
    assert welcome.address.text().startswith(f"Point your tools at {proxy.url} instead of Ollama's address")
    welcome.copy.click()
    assert QGuiApplication.clipboard().text() == proxy.url and welcome.copy.text() == "Copied"
    assert welcome.ollama.text().startswith("Ollama 0.")  # the fake, started elsewhere: running
    assert welcome.download.isHidden() and welcome.detect.isHidden()
    window.tabs.setCurrentWidget(window.requests)
    assert window.requests.currentWidget() is window.requests.empty
    assert window.requests.empty.text().startswith(f"No requests yet: point a tool at {proxy.url}")
    assert not window.breakdown.models_note.isHidden() and not window.breakdown.clients_note.isHidden()


def test_the_welcome_says_when_tools_need_no_change(window: DashboardWindow, proxy: RunningProxy) -> None:
    window.set_endpoint("http://127.0.0.1:11434")
    window.show_stats({**httpx.get(proxy.url + "/-/stats").json(), "takeover": {"on": True}})
    assert window.cards.welcome.address.text() == (
        "Your tools need no change: Ollacache answers at Ollama's usual address, http://127.0.0.1:11434."
    )


def test_the_welcome_stays_until_the_caches_first_hit(window: DashboardWindow, proxy: RunningProxy) -> None:
    with proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        stored = wait_for(lambda: (s := http.get("/-/stats").json())["store"]["entries"] == 1 and s, "the entry")
        window.show_stats(stored)
        assert window.cards.welcome.isVisible()  # an answer stored proves nothing yet
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        window.show_stats(http.get("/-/stats").json())
    assert window.cards.welcome.isHidden()


def test_finished_requests_fill_the_table_newest_first_and_bounded(window: DashboardWindow) -> None:
    window.add_request(EVENT)
    window.add_request({**EVENT, "cache": "miss", "latency_ms": 1834.5, "client": "curl"})
    model = window.requests.model
    assert window.requests.currentWidget() is window.requests.view
    rows = [
        [model.index(row, column).data() for column in range(model.columnCount())] for row in range(model.rowCount())
    ]
    clock = time.strftime("%H:%M:%S", time.localtime(1796157605))  # 2026-12-01T20:40:05Z on this machine
    assert rows == [
        [clock, "curl", "llama3.2:latest", "/api/chat", "○ MISS", "200", "1,834 ms", "1,234"],
        [clock, "ollama-python", "llama3.2:latest", "/api/chat", "● HIT", "200", "1.2 ms", "1,234"],
    ]
    for number in range(MAX_ROWS + 100):
        window.add_request({**EVENT, "tokens": number})
    assert model.rowCount() == MAX_ROWS
    assert model.index(0, 7).data() == f"{MAX_ROWS + 99:,}"


def test_a_chart_holds_an_hour_of_samples_and_draws_it(qtbot: QtBot) -> None:
    chart = TimeChart("CPU", "%", [Series("system", 210), Series("Ollama", 280)], y_max=100)
    qtbot.addWidget(chart)
    chart.resize(640, 240)
    start = time.time() - 2 * MAX_POINTS
    for second in range(MAX_POINTS + 400):
        gap = 1000 <= second < 1010  # Ollama not running for ten seconds: a gap in its line
        chart.append(start + second, [50.0, None if gap else 20.0])
    chart.set_window(3600)
    assert len(chart.times) == MAX_POINTS
    assert sum(line.size() for line in chart.lines[0]) == MAX_POINTS
    assert [line.size() for line in chart.lines[1]] == [600, MAX_POINTS - 610]  # split at the gap, 400 gone
    assert not chart.grab().isNull()


def test_the_live_charts_take_one_sample_per_stats_document(window: DashboardWindow, proxy: RunningProxy) -> None:
    with proxy.client() as http:
        window.show_stats(http.get("/-/stats").json())
        http.post("/api/chat", json=CHAT)
        http.post("/api/chat", json=CHAT)
        window.show_stats(http.get("/-/stats").json())
    charts = window.charts
    assert [len(chart.times) for chart in charts.charts()] == [2, 2, 2, 2]
    assert charts.traffic.values[0][0] is None and charts.traffic.values[0][1] > 0  # hits per second
    assert charts.memory.values[2][1] > 1  # Ollacache's resident MiB
    assert charts.memory.values[1][1] > 1 and charts.cpu.values[1][1] is not None  # the attached Ollama's, drawn
    charts.window.setCurrentIndex(charts.window.findData(900))
    assert {chart.window_s for chart in charts.charts()} == {900.0}


def test_a_running_request_is_completed_in_place_and_errors_read_red(window: DashboardWindow) -> None:
    from PySide6.QtCore import Qt as QtCore_Qt

    window.add_requests([{**EVENT, "id": 7, "streamed": True}], running=True)
    model = window.requests.model
    assert model.rowCount() == 1 and model.index(0, 4).data() == "… running"
    assert model.index(0, 3).data().endswith(" · stream")
    window.add_requests([{**EVENT, "id": 7, "streamed": True, "cache": "MISS", "status": 200}])
    assert model.rowCount() == 1 and model.index(0, 4).data() == "○ MISS"  # the same row, finished
    window.add_requests([{**EVENT, "id": 8, "cache": "MISS", "status": 502}])
    assert model.rowCount() == 2 and model.index(0, 5).data() == "502"
    assert model.index(0, 5).data(QtCore_Qt.ItemDataRole.ForegroundRole) is not None  # red
    assert model.index(1, 5).data(QtCore_Qt.ItemDataRole.ForegroundRole) is None


def test_axis_numbers_read_as_people_write_them_and_axis_titles_fit(window: DashboardWindow) -> None:
    from desktop.dashboard.live import per_second

    assert [per_second(v) for v in (1500, 25, 0.5, 0.25, 0)] == ["1,500/s", "25/s", "0.5/s", "0.25/s", "0/s"]
    for chart in window.charts.charts():
        title_width = chart.fontMetrics().horizontalAdvance(chart.y_label)
        plot_height = chart.minimumHeight() - chart.fontMetrics().height() * 4 - 8
        assert title_width <= plot_height, chart.title  # written along the axis, whole


def test_an_ollama_whose_use_cannot_be_read_is_said_on_its_charts(window: DashboardWindow, proxy: RunningProxy) -> None:
    stats = httpx.get(proxy.url + "/-/stats").json()
    stats["resources"] = {**stats["resources"], "ollama": None, "ollama_unreadable": "it runs as another user"}
    window.show_stats(stats)
    assert window.charts.cpu.note == "Ollama's use cannot be read: it runs as another user."
    assert window.charts.memory.note == window.charts.cpu.note


def test_the_ollama_panel_shows_models_and_its_buttons_ask_the_shell(window: DashboardWindow, qtbot: QtBot) -> None:
    panel = window.ollama
    window.show_ollama(
        {
            "state": "running",
            "version": "0.12.0",
            "uptime_s": 3725,
            "restarts": 2,
            "managed": True,
            "upstream": "http://127.0.0.1:11435",
            "models": [{"name": "llama3.2:latest", "size": 3 * 2**30, "size_vram": 2**30}],
        }
    )
    assert panel.state.text() == "● Running" and window.cards.ollama.value.text() == "● Running"
    assert (panel.uptime.text(), panel.restarts.text()) == ("1h 02m", "2")
    assert table_rows(panel.models) == [["llama3.2:latest", "3.0 GiB", "1.0 GiB"]]
    assert not panel.unload.isEnabled()
    panel.models.selectRow(0)
    with qtbot.waitSignal(window.unload_requested) as unloaded:
        qtbot.mouseClick(panel.unload, Qt.MouseButton.LeftButton)
    assert unloaded.args == ["llama3.2:latest"]
    with qtbot.waitSignal(window.restart_ollama_requested):
        panel.restart.animateClick()
    window.show_log(["first line\n", "last line\n"])
    assert panel.log.toPlainText() == "first line\nlast line"
    window.show_ollama({"state": "failed", "reason": "crashed 5 times in 2 minutes", "managed": True})
    assert panel.state.text() == "✕ Failed" and panel.uptime.text() == "–"


def test_every_tab_is_reachable_by_keyboard(window: DashboardWindow, qtbot: QtBot) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    for number in (3, 4, 1, 2):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_0.value + number), Qt.KeyboardModifier.ControlModifier)
        assert window.tabs.currentIndex() == number - 1
    texts = [window.tabs.tabText(index) for index in range(window.tabs.count())]
    texts += [widget.text() for widget in window.findChildren(QPushButton)]
    texts += [
        label.text()
        for label in window.findChildren(QLabel)  # labels of fields one can focus
        if label.buddy() is not None and label.buddy().focusPolicy() & Qt.FocusPolicy.TabFocus
    ]
    keys = [re.search(r"&(\w)", text) for text in texts]
    assert all(keys), texts  # every tab, button and labelled field has an Alt+letter...
    letters = [key.group(1).lower() for key in keys if key]
    assert len(set(letters)) == len(letters), texts  # ...and no two share one


def test_colours_follow_a_dark_scheme(window: DashboardWindow) -> None:
    chart = window.charts.cpu
    light = chart.colour(chart.series[0]).lightness()
    window.setPalette(dark_palette())
    assert chart.colour(chart.series[0]).lightness() > light
    window.show_ollama({"state": "running"})
    label = window.ollama.state.palette().color(QPalette.ColorRole.WindowText)
    assert label.lightness() > 128  # readable on the dark window


def test_the_first_window_fits_a_small_screen(qtbot: QtBot, tmp_path: Path) -> None:
    window = window_in(tmp_path)
    qtbot.addWidget(window)
    window.show()
    available = window.screen().availableGeometry()  # offscreen: 800 x 800, smaller than the usual 1100 x 800
    assert window.frameGeometry().width() <= available.width()
    assert window.frameGeometry().height() <= available.height()
    assert window.width() >= 0.8 * available.width()  # and still uses most of it


def test_the_window_remembers_its_size_tab_and_chart_window(qtbot: QtBot, tmp_path: Path) -> None:
    first = window_in(tmp_path)
    qtbot.addWidget(first)
    first.show()
    first.resize(700, 500)
    first.tabs.setCurrentIndex(2)
    first.charts.set_window_minutes(60)
    first.close()
    assert settings_in(tmp_path).value("dashboard/tab") in (2, "2")
    second = window_in(tmp_path)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (700, 500)
    assert second.tabs.currentIndex() == 2 and second.charts.cpu.window_s == 3600


def test_an_app_drawing_the_dashboard_for_a_while_exits_cleanly(tmp_path: Path) -> None:
    """Thousands of paints and a normal exit: no abort at interpreter exit (as one pyqtgraph build did), no
    none_dealloc from PySide6's lost references to None."""
    script = textwrap.dedent(f"""
        import os, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from desktop.dashboard import DashboardWindow
        window = DashboardWindow(settings=QSettings({str(tmp_path / "d.ini")!r}, QSettings.Format.IniFormat))
        window.show()
        snapshot = {{"totals": {{"requests": 1, "hits": 1, "misses": 0, "hit_rate": 1.0}}, "uptime_s": 0,
                    "rates": {{"1m": {{"hits_per_s": 1.0, "misses_per_s": 0.0, "hit_rate": 1.0}}}},
                    "resources": {{"system": {{"cpu_percent": 5.0, "memory_used_bytes": 2**30, "cpu_count": 2}},
                                   "proxy": {{"cpu_percent": 1.0, "rss_bytes": 2**26}}}}}}
        for second in range(400):
            snapshot["uptime_s"] = second
            window.show_stats(snapshot)
            window.add_request({{"cache": "hit", "model": "m", "latency_ms": 1.0}})
            for chart in window.charts.charts():
                chart.grab()
        window.close()
        print("drawn")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "drawn"), done.stderr


def test_qt_calls_that_return_nothing_never_use_up_none() -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void call (pyproject keeps it out): with
    the PySide6 installed, 200,000 such calls (far more than None has references) leave the interpreter running."""
    script = (
        "import desktop.dashboard\nfrom PySide6.QtCore import QPointF\npoint = QPointF()\n"
        "for _ in range(200_000):\n    point.setX(1.0)\nprint('alive')"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr


def test_per_api_key_figures_show_once_a_shared_proxy_has_seen_a_key(
    window: DashboardWindow, proxy: RunningProxy
) -> None:
    snapshot = httpx.get(proxy.url + "/-/stats").json()
    window.show_stats(snapshot)
    breakdown = window.breakdown
    assert breakdown.keys.isHidden() and breakdown.keys_heading.isHidden()  # not shared: no word of keys
    alice = {"requests": 3, "hits": 2, "misses": 1, "hit_rate": 2 / 3, "time_saved_s": 4.0, "tokens_saved": 10}
    window.show_stats({**snapshot, "keys": {"alice-laptop": alice}})
    assert not breakdown.keys.isHidden() and not breakdown.keys_heading.isHidden()
    assert table_rows(breakdown.keys)[0][:4] == ["alice-laptop", "3", "2", "66.7 %"]
