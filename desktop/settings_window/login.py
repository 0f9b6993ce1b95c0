"""The General tab's rows that belong to the desktop, not the engine: Start at login and Start hidden.

They are not in the engine's settings table (the engine runs headless too, where they mean nothing), and
no file of ours keeps them: :mod:`desktop.autostart` reads and writes the platform's own entry, so the
boxes show what the session will do. They take part in Apply, OK and Cancel like every other field:
nothing changes until Apply, and a failure is told on the window's status line with nothing changed.
Start hidden means the app starts in the tray only; without it, the dashboard opens at login. It can be
chosen only while Start at login is on.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QWidget

from desktop import autostart


class LoginRows(QObject):
    """Two check boxes, built again with each page (:meth:`add_to`), read from the platform each time."""

    edited = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.at_login: QCheckBox | None = None
        self.hidden: QCheckBox | None = None
        self.loaded = (False, False)

    def add_to(self, form: QFormLayout, page: QWidget) -> None:
        try:
            self.loaded = (autostart.is_enabled(), autostart.starts_hidden())
        except autostart.AutostartError:  # unreadable: shown off, and Apply writes what the boxes say
            self.loaded = (False, False)
        self.at_login = QCheckBox("Start Ollacache when I log in", page)
        self.at_login.setToolTip(
            "Off by default. Ollacache then starts the engine and shows its tray icon each time you log in."
        )
        self.hidden = QCheckBox("Start hidden: only the tray icon, no window", page)
        self.hidden.setToolTip("At login, open nothing but the tray icon (otherwise the dashboard opens).")
        self.at_login.setChecked(self.loaded[0])
        self.hidden.setChecked(self.loaded[1])
        self._enable_hidden()
        self.at_login.toggled.connect(self._enable_hidden)
        for box in (self.at_login, self.hidden):
            box.toggled.connect(self.edited)
        form.addRow("Start at login:", self.at_login)
        form.addRow("", self.hidden)

    def _enable_hidden(self) -> None:
        if self.at_login is not None and self.hidden is not None:
            self.hidden.setEnabled(self.at_login.isChecked())

    def wanted(self) -> tuple[bool, bool]:
        if self.at_login is None or self.hidden is None:
            return self.loaded
        on = self.at_login.isChecked()
        return on, on and self.hidden.isChecked()

    def changed(self) -> bool:
        return self.wanted() != self.loaded  # both read as (on, on and hidden)

    def apply(self) -> str:
        """Write what the boxes say; the sentence for the status line. Raises AutostartError."""
        on, hidden = self.wanted()
        if on:
            autostart.enable(hidden=hidden)
        else:
            autostart.disable()
        self.loaded = (on, hidden)
        return f"start at login: {'on' + (', hidden' if hidden else '') if on else 'off'}"
