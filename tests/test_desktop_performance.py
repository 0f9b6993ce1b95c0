"""The settings window's Performance tab against a real engine process and the fake Ollama: the hardware
the engine detected, the recommended values beside those in use, Apply recommended, and Tune now with its
chart and Apply the winner."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from core.units import human_bytes
from desktop.app import TrayApp
from desktop.icons import IconState
from desktop.settings_window import SettingsWindow
from desktop.settings_window.tune_chart import EMPTY_TEXT
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)


@pytest.fixture
def small_context() -> Path:
    """The user set a context length of their own in config.toml before the app started."""
    config = Path(os.environ["OLLACACHE_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[tuning]\nnum_ctx = 1024  # mine\n")
    return config


def open_performance(tray_app: TrayApp, qtbot: QtBot, tmp_path: Path) -> SettingsWindow:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = SettingsWindow(tray_app.context, QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.fields), timeout=WAIT_MS)
    window.tabs.setCurrentIndex([window.tabs.tabText(i) for i in range(window.tabs.count())].index("Performance"))
    qtbot.waitUntil(lambda: window.performance.isVisible() and bool(window.performance.hardware), timeout=WAIT_MS)
    return window


def test_the_tab_shows_the_hardware_and_a_users_value_beside_the_recommended_one(
    behind_fake: str, small_context: Path, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    panel = open_performance(tray_app, qtbot, tmp_path).performance
    detected = httpx.get(f"{tray_app.engine.url}/-/hardware").json()
    assert f"{detected['logical_cpus']} logical" in panel.machine["Cores"].text()
    assert panel.machine["Memory"].text() == human_bytes(detected["memory_bytes"])
    recommended = detected["for_this_machine"]["num_ctx"]
    assert panel.recommended["num_ctx"].text() == f"{recommended:,} tokens"
    assert panel.in_use["num_ctx"].text() == "1,024 tokens (your setting)"
    assert panel.recommended["num_thread"].text() == panel.in_use["num_thread"].text()
    assert "core" in panel.recommended["num_thread"].toolTip()  # the reason, as a tooltip
    prompt_cache = detected["for_this_machine"]["prompt_cache_ram"]
    assert panel.recommended["prompt_cache_ram"].text() == f"{prompt_cache:,} MiB per model"
    assert "a sixteenth of" in panel.recommended["prompt_cache_ram"].toolTip()
    assert panel.chart.bars == [] and EMPTY_TEXT.startswith("No measurement yet")


def test_apply_recommended_forgets_the_users_value_and_the_engine_uses_the_recommendation(
    behind_fake: str, small_context: Path, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    window = open_performance(tray_app, qtbot, tmp_path)
    panel = window.performance
    assert panel.apply_recommended_button.isEnabled()
    panel.apply_recommended_button.click()
    url = tray_app.engine.url
    qtbot.waitUntil(
        lambda: httpx.get(f"{url}/-/hardware").json()["recommended"]["from_settings"] == [], timeout=WAIT_MS
    )
    recommended = httpx.get(f"{url}/-/hardware").json()["for_this_machine"]["num_ctx"]
    qtbot.waitUntil(lambda: panel.in_use["num_ctx"].text() == f"{recommended:,} tokens", timeout=WAIT_MS)
    assert "num_ctx" not in small_context.read_text() and "# mine" not in small_context.read_text()
    assert not panel.apply_recommended_button.isEnabled()
    assert panel.status_line.text().startswith("Saved the recommended values")


def test_tune_now_draws_a_bar_per_thread_count_and_apply_the_winner_puts_it_in_force(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    window = open_performance(tray_app, qtbot, tmp_path)
    panel = window.performance
    assert not panel.apply_winner_button.isEnabled()
    panel.runs.setValue(1)
    panel.tune_button.click()
    qtbot.waitUntil(lambda: panel.apply_winner_button.isEnabled(), timeout=WAIT_MS)
    url = tray_app.engine.url
    run = httpx.get(f"{url}/-/tune").json()
    measured = sorted(row["num_thread"] for row in run["result"]["results"])
    assert [threads for threads, _ in panel.chart.bars] == measured and len(measured) >= 1
    best = run["result"]["best"]["num_thread"]
    assert panel.chart.best == best and panel.tune_note.text().startswith(("Fastest: ", "No measurable difference"))
    panel.apply_winner_button.click()
    qtbot.waitUntil(lambda: panel.status_line.text().startswith("Saved "), timeout=WAIT_MS)
    rows = {row["name"]: row for row in httpx.get(f"{url}/-/settings").json()["settings"]}
    assert rows["tuning.num_thread"]["value"] == best and rows["tuning.num_thread"]["source"] == "file"
    assert httpx.get(f"{url}/-/hardware").json()["recommended"]["num_thread"] == best
