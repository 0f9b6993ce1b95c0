"""Clear cache…: the one confirmation the tray menu and the settings window both ask before a clear.

It names how many entries go (from the feed's latest stats) and that their next requests reach Ollama
again, asked as :func:`desktop.confirm.confirm` asks (Cancel is the default). The clear itself goes through
:meth:`desktop.windows.AppContext.call`, so a failure reaches the user in the one place errors do; ``done``
hears the engine's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from core.units import plural
from desktop.confirm import confirm
from desktop.windows import AppContext


def question(entries: int) -> str:
    return f"Remove all {plural(entries, 'cached entry', 'cached entries')}?\nTheir next requests go to Ollama again."


class ClearCache:
    """Asks, then clears. :attr:`box` is the question while it is open (tests press its buttons)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.box: QMessageBox | None = None

    def entries(self) -> int:
        return int(((self.context.feed.current or {}).get("store") or {}).get("entries", 0))

    def ask(self, parent: QWidget | None = None, done: Callable[[Any], None] | None = None) -> QMessageBox:
        self.box = confirm(
            parent,
            "Clear the cache",
            question(self.entries()),
            "Clear",
            lambda: self.context.call("clear the cache", lambda client: client.clear(), done),
            self._closed,
        )
        return self.box

    def _closed(self) -> None:
        self.box = None
