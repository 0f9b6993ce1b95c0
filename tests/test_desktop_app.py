"""The tray app against a real engine process and the fake Ollama: the icon, the menu's actions, the
engine restarted when it dies, and one instance per user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from core.config.settings import load
from desktop.app import TrayApp
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, behind_fake, finish, qloop, supervised_ollama, tray_app  # noqa: F401  (fixtures)
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, free_port, proxy_process, wait_for

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def test_the_app_starts_the_engine_and_the_tray_shows_serving(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    engine = tray_app.engine
    assert engine.pid is not None and not engine.attached
    health = httpx.get(f"{engine.url}/-/health").json()
    assert health["pid"] == engine.pid
    tooltip = tray_app.tray.icon.toolTip()
    assert "Hit rate 0 %" in tooltip and "Ollama:" in tooltip
    tray_app.tray.menu.aboutToShow.emit()
    assert (
        tray_app.tray.actions["status"].text() == f"Serving on {engine.url.removeprefix('http://')} · no requests yet"
    )
    assert tray_app.tray.actions["copy_url"].isEnabled()


def test_clear_cache_asks_with_the_entry_count_and_empties_the_store(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    assert httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] == "MISS"
    qtbot.waitUntil(lambda: (tray_app.feed.stats or {}).get("store", {}).get("entries") == 1, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["clear"].trigger()
    assert tray.confirm is not None and "Remove all 1 cached entry?" in tray.confirm.text()
    tray.confirm.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(
        lambda: httpx.get(f"{tray_app.engine.url}/-/stats").json()["store"]["entries"] == 0, timeout=WAIT_MS
    )
    assert httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] == "MISS"


def test_cancelling_clear_keeps_the_entries(behind_fake: str, tray_app: TrayApp, qtbot: QtBot) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT)
    qtbot.waitUntil(lambda: (tray_app.feed.stats or {}).get("store", {}).get("entries") == 1, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["clear"].trigger()
    assert tray.confirm is not None
    tray.confirm.button(QMessageBox.StandardButton.Cancel).click()
    assert httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] == "HIT"


def test_restart_ollama_gives_a_new_ollama(supervised_ollama: str, tray_app: TrayApp, qtbot: QtBot) -> None:
    tray = tray_app.tray

    def ollama() -> dict[str, object]:
        return (tray_app.feed.stats or {}).get("ollama") or {}

    qtbot.waitUntil(lambda: tray.state is IconState.SERVING and ollama().get("state") == "running", timeout=WAIT_MS)
    first = ollama()["pid"]
    assert httpx.get(supervised_ollama + "/_fake/env").json()["pid"] == first
    tray.menu.aboutToShow.emit()
    tray.actions["restart_ollama"].trigger()
    qtbot.waitUntil(
        lambda: ollama().get("state") == "running" and ollama().get("pid") not in (None, first), timeout=WAIT_MS
    )
    assert tray_app.errors.last is None


def test_restart_ollama_is_offered_only_for_an_ollama_the_engine_runs(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray_app.tray.menu.aboutToShow.emit()
    restart = tray_app.tray.actions["restart_ollama"]
    assert not restart.isEnabled() and "cannot restart" in restart.toolTip()


def test_a_failed_call_reaches_the_user_as_one_sentence(qloop: object, qtbot: QtBot) -> None:
    from core.control.client import AsyncControlClient
    from desktop.errors import Errors

    errors = Errors()
    client = AsyncControlClient(f"http://127.0.0.1:{free_port()}", None)
    with qtbot.waitSignal(errors.reported, timeout=WAIT_MS) as reported:
        errors.run("clear the cache", client.clear())
    finish(qtbot, client.aclose())
    assert reported.args[0] == "Could not clear the cache" and "no proxy answers" in reported.args[1]
    assert errors.last == tuple(reported.args)


def test_a_killed_engine_is_restarted_and_the_icon_says_so_meanwhile(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    first = tray_app.engine.pid
    assert first is not None
    with qtbot.waitSignal(tray_app.engine.failed, timeout=WAIT_MS) as failed:
        os.kill(first, signal.SIGKILL)
    assert "killed" in failed.args[0]
    qtbot.waitUntil(lambda: tray.state is IconState.ENGINE_DOWN, timeout=WAIT_MS)
    assert "engine" in tray.icon.toolTip()
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    assert tray_app.engine.pid not in (None, first)
    assert httpx.get(f"{tray_app.engine.url}/-/health").json()["pid"] == tray_app.engine.pid


def test_an_engine_already_running_is_attached_and_left_running(
    upstream: tuple[FakeOllama, str], qloop: object, qtbot: QtBot
) -> None:
    with proxy_process(upstream[1]) as proxy:
        app = TrayApp(load())
        app.start()
        qtbot.waitUntil(lambda: app.tray.state is IconState.SERVING, timeout=WAIT_MS)
        assert app.engine.attached and app.engine.url == proxy.url and app.engine.pid is None
        with qtbot.waitSignal(app.finished, timeout=WAIT_MS):
            app.quit()
        assert proxy.process is not None and proxy.process.poll() is None
        assert httpx.get(proxy.url + "/-/health").status_code == 200


def _app_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OLLACACHE_PORT": "0", **extra}


def test_a_second_launch_brings_the_first_forward_and_exits(behind_fake: str, qloop: object, qtbot: QtBot) -> None:
    from desktop.instance import SingleInstance

    settings = load()
    instance = SingleInstance(settings.config_dir)
    assert instance.claim()
    app = TrayApp(settings, instance=instance)
    app.start()
    try:
        second = subprocess.Popen(
            [sys.executable, "-m", "desktop"], cwd=ROOT, env=_app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        with qtbot.waitSignal(instance.activated, timeout=WAIT_MS):
            qtbot.waitUntil(lambda: second.poll() is not None, timeout=WAIT_MS)
        out, err = second.communicate()
        assert second.returncode == 0 and err == b""
        assert app.windows.built("dashboard") is not None and app.windows.built("dashboard").isVisible()
    finally:
        with qtbot.waitSignal(app.finished, timeout=WAIT_MS):
            app.quit()


def test_pause_from_the_menu_makes_requests_pass_through_and_resume_caches_again(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["pause"].trigger()
    qtbot.waitUntil(lambda: tray.state is IconState.PAUSED, timeout=WAIT_MS)
    url = tray_app.engine.url
    assert [httpx.post(f"{url}/api/chat", json=CHAT).headers["x-cache"] for _ in range(2)] == ["BYPASS", "BYPASS"]
    tray.menu.aboutToShow.emit()
    assert tray.actions["pause"].isChecked()
    tray.actions["pause"].trigger()
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    assert [httpx.post(f"{url}/api/chat", json=CHAT).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_start_at_login_from_the_menu_writes_and_removes_the_autostart_entry(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    entry = tmp_path / "xdg" / "autostart" / "ollacache.desktop"
    tray = tray_app.tray
    tray.menu.aboutToShow.emit()
    assert not tray.actions["login"].isChecked() and not entry.exists()  # off by default
    tray.actions["login"].trigger()
    assert entry.exists() and "Exec=" in entry.read_text()
    tray.menu.aboutToShow.emit()
    assert tray.actions["login"].isChecked()
    tray.actions["login"].trigger()
    assert not entry.exists()


def test_the_dashboard_follows_the_engine_through_the_feed(behind_fake: str, tray_app: TrayApp, qtbot: QtBot) -> None:
    """The dashboard the app opens shows what the engine counted, and each request as it finishes."""
    from desktop.dashboard_window import build_dashboard

    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    qtbot.waitUntil(
        lambda: f"Point your tools at {tray_app.engine.url}" in window.cards.welcome.address.text(), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: tray_app.feed.connected, timeout=WAIT_MS)
    outcomes = [httpx.post(f"{tray_app.engine.url}/api/chat", json=CHAT).headers["x-cache"] for _ in range(3)]
    assert outcomes == ["MISS", "HIT", "HIT"]
    qtbot.waitUntil(lambda: window.cards.hit_rate.detail.text() == "2 hits, 1 miss", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.requests.model.rowCount() == 3, timeout=WAIT_MS)
    assert window.requests.model.index(0, 4).data().endswith("HIT")
    qtbot.waitUntil(lambda: "Hit rate 67 % · 3 requests today" in tray_app.tray.icon.toolTip(), timeout=WAIT_MS)


def test_the_tray_and_the_dashboard_show_answers_shared_with_a_request_in_flight(
    behind_fake: str, upstream: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot
) -> None:
    """Three identical requests at once: one call to Ollama, two answers shared, and the app says so."""
    from desktop.dashboard_window import build_dashboard

    fake = upstream[0]
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    url = tray_app.engine.url
    fake.configure(hang=True)  # the first is held upstream until the other two follow it
    with ThreadPoolExecutor(max_workers=3) as pool:
        sent = [pool.submit(httpx.post, f"{url}/api/chat", json=CHAT, timeout=30)]
        assert fake.wait_for_calls(1, "/api/chat")
        sent += [pool.submit(httpx.post, f"{url}/api/chat", json=CHAT, timeout=30) for _ in range(2)]
        wait_for(
            lambda: httpx.get(f"{url}/-/stats").json()["in_flight"] == {"calls": 1, "following": 2},
            "two requests following the first",
        )
        fake.configure(hang=False)
        assert [future.result().headers["x-cache"] for future in sent] == ["MISS", "SHARED", "SHARED"]
    qtbot.waitUntil(
        lambda: "Hit rate 67 % · 3 requests today, 2 shared" in tray_app.tray.icon.toolTip(), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: window.cards.hit_rate.detail.text() == "0 hits, 2 shared, 1 miss", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.requests.model.rowCount() == 3, timeout=WAIT_MS)
    assert sorted(window.requests.model.index(row, 4).data() for row in range(3)) == ["○ MISS", "◑ SHARED", "◑ SHARED"]


def test_a_dashboard_opened_at_launch_waits_for_the_engine_without_an_error(
    supervised_ollama: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    """A user's launch opens the dashboard before the engine answers: no "could not" on the way."""
    from desktop.dashboard_window import build_dashboard

    reported: list[tuple[str, str]] = []
    tray_app.errors.reported.connect(lambda title, message: reported.append((title, message)))
    assert not tray_app.feed.connected
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(window.ollama.log.toPlainText()), timeout=WAIT_MS)  # read once connected
    assert reported == []


@pytest.fixture
def unusable_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("OLLACACHE_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    return tmp_path / "a-file" / "cache"


def test_a_store_that_failed_before_the_app_connected_is_told(
    behind_fake: str, unusable_cache_dir: Path, tray_app: TrayApp, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(tray_app.tray.icon, "showMessage", lambda title, message, *rest: shown.append((title, message)))
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    [(title, message)] = shown
    assert title == "The cache is not working"
    assert "Not a directory" in message and message.endswith("Requests go straight to Ollama meanwhile.")


def test_calls_cancelled_at_quit_before_they_began_leave_nothing_unawaited(qloop: object, qtbot: QtBot) -> None:
    import gc
    import warnings

    from desktop.errors import Errors

    errors = Errors()
    ran: list[bool] = []

    async def call() -> None:
        ran.append(True)

    errors.run("list Ollama's loaded models", call()).cancel()  # an event came as the app quits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finish(qtbot, errors.drain())
        gc.collect()
    assert ran == [] and not [w for w in caught if "never awaited" in str(w.message)]
