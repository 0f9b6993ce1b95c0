"""What the desktop tests share: Qt offscreen (set before any QApplication exists), a qasync loop on
pytest-qt's application, and the tray app started against a real engine process.

Import it before anything from PySide6 in a test module: ``from tests.desktop_qt import ...``.
"""

from __future__ import annotations

import asyncio
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from collections.abc import Coroutine, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from core.config.settings import load  # noqa: E402
from desktop.app import TrayApp  # noqa: E402
from tests.fakes.ollama_server import FakeOllama  # noqa: E402
from tests.harness import free_port  # noqa: E402
from tests.test_supervisor_process import FAKE_OLLAMA, FAKE_PYTHON  # noqa: E402

WAIT_MS = 60_000  # a bound for conditions the engine reaches on its own clock, never a measure


_loop: qasync.QEventLoop | None = None


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """An asyncio loop driven by Qt's events: it runs whenever qtbot waits. One loop serves every test
    of the process (a qasync loop on an application that never runs exec() cannot be closed and
    replaced cleanly); each test leaves it with none of its tasks still running."""
    global _loop
    if _loop is None:
        _loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(_loop)
    asyncio.set_event_loop(_loop)
    try:
        yield _loop
    finally:
        for task in asyncio.all_tasks(_loop):
            task.cancel()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)


def finish(qtbot: QtBot, work: Coroutine[Any, Any, Any]) -> Any:
    """Run ``work`` on the qasync loop while Qt processes events; its result."""
    task = asyncio.ensure_future(work)
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


@pytest.fixture
def tray_app(qtbot: QtBot, qloop: qasync.QEventLoop, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrayApp]:
    """The app, started; its engine (``python -m core serve`` on port 0) inherits the test's environment.
    Quit at the end."""
    monkeypatch.setenv("OLLACACHE_PORT", "0")
    app = TrayApp(load())
    app.start()
    try:
        yield app
    finally:
        with qtbot.waitSignal(app.finished, timeout=WAIT_MS):
            app.quit()


@pytest.fixture
def behind_fake(upstream: tuple[FakeOllama, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine the app starts forwards to the fake Ollama of ``upstream``."""
    monkeypatch.setenv("OLLACACHE_UPSTREAM", upstream[1])
    return upstream[1]


@pytest.fixture
def supervised_ollama(monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine will supervise the fake `ollama` executable on a free port."""
    upstream = f"http://127.0.0.1:{free_port()}"
    for name, value in {
        "OLLACACHE_MANAGE_OLLAMA": "auto",
        "OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA,
        "OLLACACHE_UPSTREAM": upstream,
        **FAKE_PYTHON,
    }.items():
        monkeypatch.setenv(name, value)
    return upstream
