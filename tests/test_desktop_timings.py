"""The app writes when it showed its icon and its dashboard (how long a user waited) to desktop.log,
where the tray bench reads them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from core.config.settings import load
from desktop.app import TrayApp
from desktop.instance import SingleInstance
from tests.desktop_qt import WAIT_MS, qloop  # noqa: F401  (fixture)
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT

SHOWN = re.compile(r"timing: (.+) shown ([0-9.]+) s after the process started \(at ([0-9.]+)\)")


def _shown(log: Path) -> list[str]:
    return [m[1] for m in SHOWN.finditer(log.read_text())] if log.exists() else []


def test_the_icon_and_the_dashboard_brought_forward_are_timed_in_the_log(
    upstream: tuple[FakeOllama, str], qloop: object, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLACACHE_UPSTREAM", upstream[1])
    monkeypatch.setenv("OLLACACHE_PORT", "0")
    settings = load()
    instance = SingleInstance(settings.config_dir)
    assert instance.claim()
    app = TrayApp(settings, instance=instance, log_directory=tmp_path)
    app.start()
    log = tmp_path / "desktop.log"
    try:
        before = _shown(log)  # offscreen there is no tray, so the dashboard opens at once too
        assert before[0] == "tray icon"
        second = subprocess.run(
            [sys.executable, "-m", "desktop"],
            cwd=ROOT,
            check=False,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            capture_output=True,
        )
        assert second.returncode == 0
        qtbot.waitUntil(lambda: _shown(log) == [*before, "dashboard"], timeout=WAIT_MS)
        since = [float(m[2]) for m in SHOWN.finditer(log.read_text())]
        assert all(s > 0 for s in since)
    finally:
        with qtbot.waitSignal(app.finished, timeout=WAIT_MS):
            app.quit()
