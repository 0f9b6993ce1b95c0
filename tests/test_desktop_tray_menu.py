"""The tray menu's Ollama entries against a real engine process: the loaded models with Unload, Start and
Stop of the Ollama the engine runs, and Tune now with its progress on the status line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.icons import IconState
from desktop.tray_status import STORE_FAILING, status_line, tooltip, tune_progress
from tests.desktop_qt import WAIT_MS, qloop, supervised_ollama, tray_app  # noqa: F401  (fixtures)
from tests.fakes.ollama_server import FakeOllama
from tests.harness import free_port

GENERATE = {"model": "llama3.2", "prompt": "hi", "stream": False, "options": {"temperature": 0}}


@pytest.fixture
def behind_fake(upstream: tuple[FakeOllama, str], monkeypatch: pytest.MonkeyPatch) -> tuple[FakeOllama, str]:
    monkeypatch.setenv("OLLACACHE_UPSTREAM", upstream[1])
    return upstream


def submenu(app: TrayApp) -> list[str]:
    return [action.text() for action in app.tray.models_menu.actions()]


def ollama(app: TrayApp) -> dict[str, Any]:
    return (app.feed.stats or {}).get("ollama") or {}


def test_loaded_models_are_listed_and_unload_empties_ollamas_list(
    behind_fake: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray, url = tray_app.tray, behind_fake[1]
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    qtbot.waitUntil(lambda: submenu(tray_app) == ["No model loaded"], timeout=WAIT_MS)
    assert httpx.post(f"{tray_app.engine.url}/api/generate", json=GENERATE, timeout=60).status_code == 200
    assert [m["name"] for m in httpx.get(f"{url}/api/ps").json()["models"]] == ["llama3.2:latest"]
    tray.menu.aboutToShow.emit()
    qtbot.waitUntil(lambda: list(tray.unload_actions) == ["llama3.2:latest"], timeout=WAIT_MS)
    assert submenu(tray_app)[0].startswith("Unload llama3.2:latest")
    tray.unload_actions["llama3.2:latest"].trigger()
    qtbot.waitUntil(lambda: submenu(tray_app) == ["No model loaded"], timeout=WAIT_MS)
    assert httpx.get(f"{url}/api/ps").json()["models"] == []
    assert tray_app.errors.last is None


def test_an_ollama_that_is_not_running_is_said_in_the_submenu_and_not_asked(
    monkeypatch: pytest.MonkeyPatch, tray_app: TrayApp, qtbot: QtBot
) -> None:
    monkeypatch.setenv("OLLACACHE_UPSTREAM", f"http://127.0.0.1:{free_port()}")  # for the engine started below
    tray = tray_app.tray
    qtbot.waitUntil(lambda: ollama(tray_app).get("state") == "stopped", timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    qtbot.waitUntil(lambda: submenu(tray_app) == ["Ollama is not running"], timeout=WAIT_MS)
    assert tray_app.errors.last is None  # nothing to ask is no failure of the user's


def test_stop_holds_ollama_stopped_and_start_runs_it_again(
    supervised_ollama: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(
        lambda: tray.state is IconState.SERVING and ollama(tray_app).get("state") == "running", timeout=WAIT_MS
    )
    first = ollama(tray_app)["pid"]
    tray.menu.aboutToShow.emit()
    assert "start_ollama" not in tray.actions and tray.actions["stop_ollama"].isEnabled()
    tray.actions["stop_ollama"].trigger()
    qtbot.waitUntil(
        lambda: ollama(tray_app).get("state") == "stopped" and ollama(tray_app).get("held"), timeout=WAIT_MS
    )
    with pytest.raises(httpx.ConnectError):
        httpx.get(supervised_ollama + "/api/version")
    tray.menu.aboutToShow.emit()
    assert "stop_ollama" not in tray.actions and tray.actions["start_ollama"].isEnabled()
    assert not tray.actions["restart_ollama"].isEnabled()
    tray.actions["start_ollama"].trigger()
    qtbot.waitUntil(
        lambda: ollama(tray_app).get("state") == "running" and ollama(tray_app).get("pid") != first, timeout=WAIT_MS
    )
    assert httpx.get(supervised_ollama + "/api/version").status_code == 200
    tray.menu.aboutToShow.emit()
    assert tray.actions["stop_ollama"].isEnabled() and tray_app.errors.last is None


def test_start_and_stop_are_disabled_for_an_ollama_started_elsewhere(
    behind_fake: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot
) -> None:
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    stop = tray.actions["stop_ollama"]
    assert not stop.isEnabled() and "cannot stop it" in stop.toolTip()


def test_tune_now_measures_with_progress_on_the_status_line(
    behind_fake: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot
) -> None:
    fake = behind_fake[0]
    fake.configure(speed_curve={"1": 7.0, "2": 3.0})
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["tune"].trigger()
    assert tray.tune_dialog is not None and tray.tune_dialog.intValue() == 3
    tray.tune_dialog.setIntValue(1)
    fake.configure(hang=True)  # Ollama's answers are held: the run stays at its start meanwhile
    steps: list[dict[str, Any]] = []
    tray_app.feed.tune_did_progress.connect(steps.append)
    tray.tune_dialog.accept()
    qtbot.waitUntil(lambda: "Tuning: starting…" in tray.actions["status"].text(), timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    assert tray.actions["status"].text().endswith("· Tuning: starting…") and not tray.actions["tune"].isEnabled()
    fake.configure(hang=False)
    qtbot.waitUntil(lambda: httpx.get(f"{tray_app.engine.url}/-/tune").json()["state"] == "done", timeout=WAIT_MS)
    done = httpx.get(f"{tray_app.engine.url}/-/tune").json()
    assert done["result"]["best"]["num_thread"] == 1
    assert fake.received("/api/generate")  # it measured against the fake
    qtbot.waitUntil(lambda: (tray_app.feed.stats or {}).get("tune", {}).get("state") == "done", timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    assert "Tuning" not in tray.actions["status"].text() and tray.actions["tune"].isEnabled()
    qtbot.waitUntil(lambda: steps and steps[-1]["step"] == steps[-1]["steps"], timeout=WAIT_MS)
    first = tune_progress({"state": "running", "progress": steps[0]})  # how a step reads while it runs
    assert first == f"Tuning: step 1 of {steps[0]['steps']} ({steps[0]['num_thread']} threads)"
    assert tray_app.errors.last is None


def test_open_logs_folder_shows_the_path_to_copy_where_no_file_manager_opens_it(
    behind_fake: tuple[FakeOllama, str],
    tray_app: TrayApp,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open, so no file manager: Qt cannot open the folder
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["logs"].trigger()
    box = tray.logs_box
    assert box is not None and box.isVisible() and box.informativeText() == str(tray.log_folder())
    [copy] = [button for button in box.buttons() if button.text() == "&Copy path"]
    copy.click()
    assert QGuiApplication.clipboard().text() == str(tray.log_folder())


def test_copy_endpoint_url_copies_the_proxys_address_and_says_so(
    behind_fake: tuple[FakeOllama, str], tray_app: TrayApp, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[tuple[str, str]] = []
    tray = tray_app.tray
    monkeypatch.setattr(tray, "_tell", lambda title, message: told.append((title, message)))
    qtbot.waitUntil(lambda: tray.state is IconState.SERVING, timeout=WAIT_MS)
    tray.menu.aboutToShow.emit()
    tray.actions["copy_url"].trigger()
    assert QGuiApplication.clipboard().text() == tray_app.engine.url
    assert told == [
        (
            "Address copied",
            f"{tray_app.engine.url} is on the clipboard: paste it where your tool asks for Ollama's address.",
        )
    ]


def test_the_tooltip_and_status_line_say_when_the_cache_store_fails() -> None:
    stats: dict[str, Any] = {"totals": {"requests": 4, "hit_rate": 0.5}, "ollama": {"state": "running"}}
    failing = {**stats, "store_error": "database disk image is malformed"}
    url = "http://127.0.0.1:11435"
    assert STORE_FAILING not in tooltip(stats, IconState.SERVING, "running")
    assert tooltip(failing, IconState.SERVING, "running").splitlines()[1] == STORE_FAILING  # before a cut
    assert status_line(stats, url, IconState.SERVING) == "Serving on 127.0.0.1:11435 · hit rate 50 %"
    assert status_line(failing, url, IconState.SERVING).endswith("· cache store failing")


def test_the_tooltip_raises_no_alarm_before_ollama_is_installed() -> None:
    stats: dict[str, Any] = {"totals": {"requests": 0}, "ollama": {"state": "not_installed"}}
    lines = tooltip(stats, IconState.OLLAMA_DOWN, "running").splitlines()
    assert lines[0] == "Ollacache: serving" and lines[-1] == "Ollama: not installed"
    assert tooltip({**stats, "ollama": {"state": "stopped"}}, IconState.OLLAMA_DOWN, "running").startswith(
        "Ollacache: Ollama down"
    )
