"""The one place where the app's failures reach the user.

Every action that talks to the engine runs through :meth:`Errors.run`: a :class:`ControlError` (or any
other failure of the action) becomes one sentence on :attr:`Errors.reported`, which the tray shows as a
message (and the dashboard may show too); nothing else pops up errors of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.control.client import ControlError


class Errors(QObject):
    """Collects failures as sentences: ``reported(title, message)``; :attr:`last` keeps the latest."""

    reported = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.last: tuple[str, str] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def report(self, title: str, message: str) -> None:
        self.last = (title, message)
        self.reported.emit(title, message)

    def run(
        self, what: str, action: Coroutine[Any, Any, Any], done: Callable[[Any], None] | None = None
    ) -> asyncio.Task[Any]:
        """Run ``action`` on the event loop; report its failure as "Could not WHAT"; ``done`` gets its result."""
        task = asyncio.ensure_future(self._guarded(what, action, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # cancelled before it began (at quit): the action never ran, and is closed rather than left unawaited
        task.add_done_callback(lambda ended: action.close() if ended.cancelled() else None)
        return task

    async def _guarded(self, what: str, action: Awaitable[Any], done: Callable[[Any], None] | None) -> None:
        try:
            result = await action
        except ControlError as error:
            self.report(f"Could not {what}", str(error))
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an action must never take the app down; say what broke
            self.report(f"Could not {what}", f"{type(error).__name__}: {error}")
            return
        if done is not None:
            done(result)

    async def drain(self) -> None:
        """Cancel the actions still running (at quit)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
