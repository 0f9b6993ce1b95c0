"""The app's asyncio loop: qasync's, with timers that go away when they are cancelled.

qasync runs each ``call_later`` on a Qt timer of its own, and cancelling the returned handle only marks it:
the Qt timer still fires when it is due, is found cancelled and only then killed. Every read of the
``/-/events`` stream arms a read timeout of that kind (httpx's, 30 s) and cancels it a moment later, so
after a burst of traffic thousands of dead timers went on firing for half a minute, a few hundred a
second, and the idle app spent most of its CPU on them. :class:`EventLoop` kills the Qt timer the moment
its handle is cancelled; everything else is qasync's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtCore import QObject, QTimerEvent


class _Timers(QObject):
    """One single-shot Qt timer per scheduled handle, killed when the handle runs or is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self._handles: dict[int, asyncio.TimerHandle] = {}  # Qt timer id -> handle
        self._ids: dict[int, int] = {}  # id(handle) -> Qt timer id
        self._stopped = False

    def add_callback(self, handle: asyncio.TimerHandle, delay: float = 0) -> asyncio.TimerHandle:
        timer = self.startTimer(max(0, int(delay * 1000)))
        self._handles[timer] = handle
        self._ids[id(handle)] = timer
        return handle

    def cancel(self, handle: asyncio.TimerHandle) -> None:
        timer = self._ids.pop(id(handle), None)
        if timer is not None:
            self.killTimer(timer)
            del self._handles[timer]

    def timerEvent(self, event: QTimerEvent) -> None:  # noqa: N802 - Qt's name
        timer = event.timerId()
        self.killTimer(timer)
        handle = self._handles.pop(timer, None)
        if handle is None:
            return
        del self._ids[id(handle)]
        if not self._stopped and not handle.cancelled():
            handle._run()

    def stop(self) -> None:
        self._stopped = True
        for timer in self._handles:
            self.killTimer(timer)
        self._handles.clear()
        self._ids.clear()

    def set_debug(self, enabled: bool) -> None:
        """qasync's slow-callback reports are not kept (asyncio's debug mode still works elsewhere)."""

    @property
    def pending(self) -> int:
        """Qt timers alive now (each one a handle still due)."""
        return len(self._handles)


class EventLoop(qasync.QEventLoop):  # type: ignore[misc] - qasync has no type hints
    """``qasync.QEventLoop`` whose cancelled ``call_later`` / ``call_soon`` handles stop their Qt timer at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer = _Timers()

    @property
    def pending_timers(self) -> int:
        return self._timer.pending

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.TimerHandle:
        if asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with call_later")
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
        handle = asyncio.TimerHandle(self.time() + max(0.0, delay), callback, args, self, context)
        return self._timer.add_callback(handle, delay)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Called by ``TimerHandle.cancel()``."""
        self._timer.cancel(handle)
