"""The app's event loop: a cancelled timer is gone at once, so an idle app after traffic does not keep
firing the read timeouts of every event it received."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from desktop.event_loop import EventLoop  # noqa: E402
from tests.desktop_qt import WAIT_MS  # sets the offscreen platform first

_loop: EventLoop | None = None


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[EventLoop]:
    """The app's loop driven by qtbot's waits (one per process, like the shared qasync loop)."""
    global _loop
    if _loop is None:
        _loop = EventLoop(qapp, already_running=True)
    previous = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(_loop)
    try:
        yield _loop
    finally:
        asyncio.events._set_running_loop(previous)


def test_cancelled_timers_stop_at_once_and_never_run(loop: EventLoop) -> None:
    ran: list[int] = []
    before = loop.pending_timers
    handles = [loop.call_later(30, ran.append, n) for n in range(1000)]
    assert loop.pending_timers == before + 1000
    for handle in handles:
        handle.cancel()
    assert loop.pending_timers == before and ran == []


def test_callbacks_and_coroutines_still_run(loop: EventLoop, qtbot: QtBot) -> None:
    ran: list[str] = []
    loop.call_soon(ran.append, "soon")
    loop.call_later(0.01, ran.append, "later")

    async def timed_out() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(30), 0.01)
        except TimeoutError:
            return "timed out"
        return "slept"

    task = loop.create_task(timed_out())
    qtbot.waitUntil(lambda: task.done() and len(ran) == 2, timeout=WAIT_MS)
    assert ran == ["soon", "later"] and task.result() == "timed out"
    qtbot.waitUntil(lambda: loop.pending_timers == 0, timeout=WAIT_MS)
