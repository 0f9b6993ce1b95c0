"""Restart engine now, beside the Settings window's status line.

A saved setting the engine reads only when it starts ("needs engine restart") shows the button. It is
greyed, with the reason as its tooltip, for an engine the app cannot restart (one started outside the
app). Clicked, it restarts the engine the app started and says on the status line when the engine is
back, so the window can read the settings again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton

from desktop.windows import AppContext


class RestartEngineButton(QPushButton):
    """Hidden until :meth:`offer` is given changes that need it; ``restarted`` once the engine is back up."""

    restarted = Signal()

    def __init__(self, context: AppContext | None, status: QLabel) -> None:
        super().__init__("&Restart engine now")
        self.context = context
        self.status = status
        self.clicked.connect(self.restart_now)
        self.hide()

    def offer(self, changes: Mapping[str, Any]) -> None:
        """Shown when one of the engine's ``changes`` needs an engine restart, hidden otherwise."""
        needs = any(
            isinstance(change, Mapping) and change.get("result") == "needs engine restart"
            for change in changes.values()
        )
        self.setVisible(needs)
        if needs and self.context is not None:
            why = self.context.engine.cannot_restart()
            self.setEnabled(why is None)
            self.setToolTip(
                why or "Stop the engine and start it again with the saved settings (a moment without the cache)"
            )

    def restart_now(self) -> None:
        """Restart the engine the app started, so that it reads the settings saved; say when it is back."""
        if self.context is None or self.context.engine.cannot_restart() is not None:
            return
        engine = self.context.engine
        self.setEnabled(False)
        self.status.setText("Restarting the engine…")

        def back(_url: str) -> None:
            engine.ready.disconnect(back)
            self.hide()
            self.status.setText("The engine is back, with the settings saved.")
            self.restarted.emit()

        engine.ready.connect(back)
        self.context.errors.run("restart the engine", engine.restart())
