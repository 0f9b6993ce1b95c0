"""A first run before Ollama is installed, as a newcomer meets it: the app against a real engine that finds no
`ollama` program and nothing answering. Not installed is a state, said in plain words with a download link and
"Detect again", never an error; the actions that cannot work are greyed with the reason; and once Ollama is
installed, "Detect again" starts it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.dashboard_window import build_dashboard
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, qloop, tray_app  # noqa: F401  (fixtures)
from tests.harness import free_port
from tests.test_supervisor_process import FAKE_OLLAMA, FAKE_PYTHON


@pytest.fixture
def no_ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing answers at the upstream and no `ollama` is installed: the engine looks on a PATH of one empty
    folder (where the test may install one later) and in the standard places of a home of its own."""
    if shutil.which("ollama") or any(Path(place).is_file() for place in ("/usr/local/bin/ollama", "/usr/bin/ollama")):
        pytest.skip("an ollama is installed on this machine")
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, value in {
        "OLLACACHE_MANAGE_OLLAMA": "auto",
        "OLLACACHE_UPSTREAM": f"http://127.0.0.1:{free_port()}",
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        **FAKE_PYTHON,
    }.items():
        monkeypatch.setenv(name, value)
    return folder


def ollama(app: TrayApp) -> dict[str, Any]:
    return (app.feed.current or {}).get("ollama") or {}


def test_a_first_run_without_ollama_says_not_installed_with_no_error_and_greys_what_cannot_work(
    no_ollama: Path, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: ollama(tray_app).get("state") == "not_installed", timeout=WAIT_MS)
    state = ollama(tray_app)
    assert state["reason"].startswith("Ollama is not installed: no Ollama program was found.")
    assert "`" not in state["reason"] and state["download"].startswith("https://ollama.com/download")

    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    welcome = window.cards.welcome
    qtbot.waitUntil(
        lambda: welcome.ollama.text().startswith("Ollama is not installed on this computer."), timeout=WAIT_MS
    )
    assert not welcome.download.isHidden() and not welcome.detect.isHidden()
    assert window.cards.ollama.value.text() == "○ Not installed"
    assert not window.ollama.restart.isEnabled()
    assert window.ollama.restart.toolTip() == "Ollama is not installed on this computer"

    tray = tray_app.tray
    assert tray.state is IconState.OLLAMA_DOWN
    tray.menu.aboutToShow.emit()
    assert tray.actions["detect_ollama"].isEnabled()
    restart = tray.actions["restart_ollama"]
    assert not restart.isEnabled() and restart.toolTip() == "Ollama is not installed on this computer"
    tune = tray.actions["tune"]
    assert not tune.isEnabled() and tune.toolTip() == "Tuning measures Ollama's speed: install Ollama first"
    qtbot.waitUntil(
        lambda: [a.text() for a in tray.models_menu.actions()] == ["Ollama is not installed"], timeout=WAIT_MS
    )
    assert "Ollama: not installed" in tray.icon.toolTip()
    assert tray_app.errors.last is None  # no balloon: an expected absence is not an error


def test_detect_again_after_installing_ollama_starts_it(no_ollama: Path, tray_app: TrayApp, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: ollama(tray_app).get("state") == "not_installed", timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    welcome = window.cards.welcome
    qtbot.waitUntil(lambda: not welcome.detect.isHidden(), timeout=WAIT_MS)
    welcome.detect.click()  # not yet installed: said where the question was asked, not as an error
    qtbot.waitUntil(lambda: welcome.detect_note.text().startswith("Still not found."), timeout=WAIT_MS)
    assert not welcome.detect_note.isHidden()
    assert tray_app.errors.last is None

    installed = no_ollama / "ollama"  # the user installs Ollama
    installed.write_text(f'#!/bin/sh\nexec "{FAKE_OLLAMA}" "$@"\n')
    installed.chmod(0o755)
    welcome.detect.click()
    qtbot.waitUntil(lambda: ollama(tray_app).get("state") == "running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: welcome.ollama.text().startswith("Ollama 0."), timeout=WAIT_MS)
    assert welcome.download.isHidden() and welcome.detect.isHidden() and welcome.detect_note.isHidden()
    assert ollama(tray_app)["binary"] == str(no_ollama / "ollama")
    assert tray_app.errors.last is None
