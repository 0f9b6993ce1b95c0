"""Checking and saving what is typed in the Settings window.

What is typed is checked as it is typed, by the engine's own parsers (``PUT /-/settings?dry_run=1``, a
moment after the last key), and a refusal sits under its field. Apply (and OK) sends only the fields the user
changed through ``PUT /-/settings``; the engine applies them all or none, and the status line says in one
line what happened. Start at login and Start hidden (:mod:`desktop.settings_window.login`) are applied with
the rest, after the engine took its part. A change that needs an engine restart offers Restart engine now
(:mod:`desktop.settings_window.restart`). Changing the cache folder asks first: the cache in the old folder
stays there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton, QScrollArea, QTabWidget

from core.control.client import AsyncControlClient, ControlError
from core.units import listing
from desktop.autostart import AutostartError
from desktop.settings_window.fields import Field
from desktop.settings_window.login import LoginRows
from desktop.settings_window.restart import RestartEngineButton
from desktop.windows import AppContext

RESULTS = {
    "applied": "in force now",
    "needs engine restart": "in force when the engine restarts",
    "needs Ollama restart": "in force when Ollama restarts",
    "Ollama restarted": "Ollama restarted with it",
}
CHECK_DELAY_MS = 400  # after the last key, what is typed is checked


def describe_changes(changes: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The engine's answer in one line: "Saved. Cache size: in force when the engine restarts."."""
    parts = []
    for name, change in changes.items():
        result = change.get("result", "") if isinstance(change, Mapping) else str(change)
        parts.append(f"{(labels or {}).get(name, name)}: {RESULTS.get(result, result)}")
    return "Saved. " + "; ".join(parts) + "." if parts else "Nothing to change."


def refusal_line(error: ControlError, labels: Mapping[str, str]) -> str:
    """A refusal in one line, naming the settings as the window labels them."""
    named = [labels.get(name, name) for name in error.fields]
    if not named:
        return f"Nothing was saved: {error}"
    return f"Nothing was saved: {listing(named)} {'needs' if len(named) == 1 else 'need'} another value (see below it)."


class Applying:
    """Check as typed, Apply, OK and the refusals of :class:`~desktop.settings_window.window.SettingsWindow`,
    mixed into it: the form and the widgets below are the window's (made in its ``__init__``), and the flow
    ends in the window's ``load`` (the table read again after a save) and ``close`` (OK)."""

    context: AppContext | None
    fields: dict[str, Field]
    login: LoginRows
    tabs: QTabWidget
    status: QLabel
    restart_engine: RestartEngineButton
    checking: QTimer  # started by each edit; its timeout is check_now
    apply_button: QPushButton
    busy: bool  # a save is under way
    cache_question: QMessageBox | None
    _cache_move_confirmed: bool

    def changes(self) -> dict[str, Any]:
        """Only the fields the user changed, as the engine takes them."""
        return {name: field.wire_value() for name, field in self.fields.items() if field.changed()}

    def _edited(self) -> None:
        self._update_buttons()
        self.checking.start()

    def _update_buttons(self) -> None:
        refused = any(field.error.text() for field in self.fields.values())  # fix what is marked first
        self.apply_button.setEnabled(not self.busy and self.edited() and not refused)

    def edited(self) -> bool:
        """Whether any field differs from what was loaded."""
        return self.login.changed() or any(field.changed() for field in self.fields.values())

    def check_now(self) -> None:
        """Have the engine check what is typed (nothing is written); its refusals go under their fields."""
        changes = self.changes()
        if self.context is None or not changes:
            for field in self.fields.values():
                field.show_error(None)
            self._update_buttons()
            return
        self.context.call(
            "check the settings", self._put(changes, dry_run=True), self._checked, failed=lambda _why: None
        )  # a check is no action of the user's

    @staticmethod
    def _put(changes: Mapping[str, Any], dry_run: bool = False) -> Callable[[AsyncControlClient], Awaitable[Any]]:
        """``PUT /-/settings`` of ``changes`` (``dry_run``: checked only): the answer, or the refusal when it
        names fields, for the form to show under them."""

        async def put(client: AsyncControlClient) -> Any:
            try:
                return await client.update_settings(changes, dry_run=dry_run)
            except ControlError as error:
                if error.fields:
                    return error
                raise

        return put

    def _check_then(self, changes: Mapping[str, Any], then: Callable[[], None]) -> None:
        """Have the engine check ``changes``; ``then`` if it takes them all, else the refusal under its fields."""
        if self.context is None:
            return

        def checked(answer: Any) -> None:
            if isinstance(answer, ControlError):
                self.refused(answer)
            else:
                then()

        self.context.call("check the settings", self._put(changes, dry_run=True), checked)

    def _checked(self, answer: Any) -> None:
        refused = answer.fields if isinstance(answer, ControlError) else {}
        for name, field in self.fields.items():
            field.show_error(refused.get(name) if field.changed() else None)
        self._update_buttons()

    def ask_cache_move(self, changes: Mapping[str, Any], then: Callable[[], None]) -> None:
        """A new cache folder starts empty: say that the current cache stays where it is, and ask; ``then``
        runs if the user goes ahead (the box does not block the app meanwhile)."""
        field = self.fields["cache.dir"]
        old = (field.row.get("shown") or {}).get("text") or field.row.get("value")
        new = changes["cache.dir"] or "the default folder"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Change the cache folder?",
            f"Ollacache will use {new} after the engine restarts, starting with an empty cache there.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText(
            f"The cached answers in {old} stay there; nothing is moved or deleted. Set the "
            "folder back to use them again."
        )
        change = box.addButton("&Change folder", QMessageBox.ButtonRole.AcceptRole)

        def answered() -> None:
            if box.clickedButton() is change:
                self._cache_move_confirmed = True
                then()

        box.finished.connect(answered)
        self.cache_question = box
        box.open()

    def apply(self, close: bool = False) -> None:
        """Send the engine's changes (all or none), then Start at login; only that when nothing else changed."""
        self.checking.stop()  # Apply checks it all anyway
        changes = self.changes()
        if "cache.dir" in changes and not self._cache_move_confirmed:  # a valid folder first, then the question
            self._check_then(changes, lambda: self.ask_cache_move(changes, lambda: self.apply(close)))
            return
        self._cache_move_confirmed = False
        if not changes and not self.login.changed():
            if close:
                self.close()
            return
        if not changes:
            try:
                self.status.setText(f"Saved: {self.login.apply()}.")
            except AutostartError as error:
                self.status.setText(f"Nothing was saved: {error}.")
                return
            self._update_buttons()
            if close:
                self.close()
            return
        if self.context is None:
            return
        self.busy = True
        self._update_buttons()
        self.status.setText("Saving…")

        writing = self._put(changes)

        async def put(client: AsyncControlClient) -> Any:
            try:
                return await writing(client)
            finally:
                self.busy = False
                self._update_buttons()

        self.context.call("save the settings", put, lambda answer: self._answered(answer, close))

    def _answered(self, answer: Any, close: bool) -> None:
        for field in self.fields.values():
            field.show_error(None)
        if isinstance(answer, ControlError):
            self.refused(answer)
            return
        labels = {name: field.label_text for name, field in self.fields.items()}
        said, login = describe_changes(answer.get("changes", {}), labels), self._apply_login()
        self.status.setText(f"{said} {login[0].upper()}{login[1:]}." if login else said)
        self.restart_engine.offer(answer.get("changes", {}))
        self.load()
        if close:
            self.close()

    def refused(self, error: ControlError) -> None:
        """Show the engine's message under each field at fault; go to the first one."""
        first: Field | None = None
        for name, message in error.fields.items():
            field = self.fields.get(name)
            if field is None:
                continue
            field.show_error(message)
            first = first or field
        self.status.setText(refusal_line(error, {name: field.label_text for name, field in self.fields.items()}))
        if first is not None:
            for index in range(self.tabs.count()):
                scroll = self.tabs.widget(index)
                if isinstance(scroll, QScrollArea) and scroll.widget().isAncestorOf(first.widget):
                    self.tabs.setCurrentIndex(index)
                    scroll.ensureWidgetVisible(first.widget)
            first.editor.setFocus()

    def _apply_login(self) -> str:
        """Start at login as the boxes say (the platform's own entry, written at once): what happened."""
        if not self.login.changed():
            return ""
        try:
            return self.login.apply()
        except AutostartError as error:
            return f"but {error}"
