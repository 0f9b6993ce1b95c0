"""The Settings window: one tab per section of the engine's settings table, one row per setting.

Nothing here knows a setting by name, but for the cache folder's warning: the tabs and rows come from
``GET /-/settings`` (its "sections" in order, each row's "section", "kind", "label" and "level"), so a
setting added to the engine's table appears here as it is. The common settings show; "Show advanced
settings" reveals the rest. What is typed is checked as it is typed, by the engine's own parsers
(``PUT /-/settings?dry_run=1``, a moment after the last key), and a refusal sits under its field. Apply
(and OK) sends only the fields the user changed through ``PUT /-/settings``; the engine applies them all
or none, and the status line says in one line what happened. A change that needs an engine restart offers
"Restart engine now" (greyed, with the reason, for an engine the app did not start). Changing the cache
folder asks first: the cache in the old folder stays there. Cancel puts the fields back as loaded and
closes.

Three tabs carry more than the table's rows: General has Start at login and Start hidden
(:mod:`desktop.settings_window.login`, applied with the rest, after the engine took its part), Cache has
Clear cache… (the tray menu's confirmation, :mod:`desktop.clear_cache`), and Performance the hardware,
the recommended values beside those in use, and Tune now (:mod:`desktop.settings_window.performance`).

The window remembers its size and tab in QSettings (organisation "Ollacache", application "Ollacache").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.config.settings import CACHE, GENERAL, PERFORMANCE
from core.control.client import AsyncControlClient, ControlError
from core.units import human_bytes, listing, plural
from desktop.autostart import AutostartError
from desktop.clear_cache import ClearCache
from desktop.settings_window.fields import Field
from desktop.settings_window.login import LoginRows
from desktop.settings_window.performance import PerformancePanel
from desktop.windows import AppContext

ORGANISATION = APPLICATION = "Ollacache"
EXPERT_NOTE = (
    "These settings reach the Ollama that Ollacache starts and supervises. The ollama command "
    "line and an Ollama started elsewhere (its own app, a service) do not see them."
)
_NOTES = {"Ollama server (expert)": EXPERT_NOTE}


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


class SettingsWindow(QWidget):
    """The form; :meth:`show_table` fills it from a ``GET /-/settings`` answer. ``context`` (None in a
    test that only renders) is how Apply reaches the engine."""

    def __init__(
        self, context: AppContext | None = None, settings: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Ollacache: Settings")
        self.settings = settings or QSettings(ORGANISATION, APPLICATION)
        self.fields: dict[str, Field] = {}
        self.login = LoginRows(self)  # Start at login and Start hidden, on the General tab
        self.login.edited.connect(self._edited)
        self.clearing = ClearCache(context) if context is not None else None
        self.clear_button: QPushButton | None = None
        self.performance = PerformancePanel(context)  # kept across rebuilds: its chart is the last run's
        self.performance.settings_changed.connect(self._written_elsewhere)
        self.store_summary: QLabel | None = None
        if context is not None:
            context.feed.stats_changed.connect(self._show_store)
        self.tabs = QTabWidget()
        self.tabs.currentChanged.connect(self._tab_changed)
        self.rows: dict[str, tuple[QFormLayout, str, bool]] = {}  # name: its form, section, advanced
        self.advanced = QCheckBox("Show ad&vanced settings")
        self.advanced.setChecked(self.settings.value("settings/advanced", False) in (True, "true"))
        self.advanced.toggled.connect(self._show_levels)
        self.status = QLabel("Reading the settings…")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.restart_engine = QPushButton("&Restart engine now")
        self.restart_engine.clicked.connect(self.restart_engine_now)
        self.restart_engine.hide()
        self.checking = QTimer(self)  # what is typed is checked a moment after the last key
        self.checking.setSingleShot(True)
        self.checking.setInterval(CHECK_DELAY_MS)
        self.checking.timeout.connect(self.check_now)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
        )
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).clicked.connect(lambda: self.apply(close=True))
        self.apply_button.clicked.connect(lambda: self.apply(close=False))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        status_line = QHBoxLayout()
        status_line.addWidget(self.status, 1)
        status_line.addWidget(self.restart_engine)
        layout.addLayout(status_line)
        bottom = QHBoxLayout()
        bottom.addWidget(self.advanced)
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)
        self._saved_tab = self._remembered_tab()
        self.busy = False
        self.cache_question: QMessageBox | None = None
        self._cache_move_confirmed = False
        self._update_buttons()
        self.resize(720, 620)
        geometry = self.settings.value("settings/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    # -- the table -------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the table from the engine (the form is rebuilt when it comes)."""
        if self.context is not None:
            self._read_table()
            self.performance.load()

    def _read_table(self) -> None:
        assert self.context is not None
        self.context.call(
            "read the settings",
            lambda client: client.settings(),
            self.show_table,
            failed=lambda why: self.status.setText(f"Could not read the settings: {why}"),
        )

    def show_table(self, table: Mapping[str, Any]) -> None:
        """Build one tab per section and one row per setting, keeping the tab shown."""
        keep = self.tabs.currentIndex() if self.tabs.count() else self._saved_tab
        self.tabs.blockSignals(True)
        self.performance.setParent(None)  # out of the page that goes
        while self.tabs.count():
            page = self.tabs.widget(0)
            self.tabs.removeTab(0)
            page.deleteLater()
        self.fields.clear()
        self.rows.clear()
        rows = list(table.get("settings", []))
        self.performance.editable = {row["name"]: bool(row.get("editable", True)) for row in rows}
        sections = list(table.get("sections", []))
        sections += [row["section"] for row in rows if row["section"] not in sections]
        for section in sections:
            self.tabs.addTab(self._page(section, [row for row in rows if row["section"] == section]), section)
        self.tabs.setCurrentIndex(min(max(keep, 0), self.tabs.count() - 1))
        self._show_levels(self.advanced.isChecked())
        self.tabs.blockSignals(False)
        if self.status.text() == "Reading the settings…":
            file = table.get("file")
            self.status.setText(f"Settings file: {file}" if file else "")
        self._update_buttons()

    def _page(self, section: str, rows: list[Mapping[str, Any]]) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if section in _NOTES:
            note = QLabel(_NOTES[section])
            note.setWordWrap(True)
            note.setContentsMargins(0, 0, 0, note.fontMetrics().height() // 2)
            form.addRow(note)
        for row in rows:
            field = Field(row, page)
            field.edited.connect(self._edited)
            self.fields[field.name] = field
            label = QLabel(field.label_text + ":")
            label.setBuddy(field.editor)
            label.setToolTip(field.editor.toolTip())
            form.addRow(label, field.widget)
            self.rows[field.name] = (form, section, row.get("level") == "advanced")
        if section == GENERAL:
            self.login.add_to(form, page)
        if section == CACHE:
            form.addRow("Cached answers:", self._clear_row(page))
        if section == PERFORMANCE:
            form.addRow(self.performance)
        scroll = QScrollArea()
        scroll.setWidget(page)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        return scroll

    def _show_levels(self, advanced: bool) -> None:
        """The common settings, and the advanced ones too when asked; a tab left with nothing to show hides."""
        self.settings.setValue("settings/advanced", advanced)
        shown_in: dict[str, bool] = {}
        for name, (form, section, is_advanced) in self.rows.items():
            visible = advanced or not is_advanced or bool(self.fields[name].error.text())
            form.setRowVisible(self.fields[name].widget, visible)
            shown_in[section] = shown_in.get(section, False) or visible
        for index in range(self.tabs.count()):
            section = self.tabs.tabText(index)
            self.tabs.setTabVisible(index, shown_in.get(section, True) or section in (GENERAL, CACHE, PERFORMANCE))

    def _clear_row(self, page: QWidget) -> QWidget:
        """What the store holds now (from the feed) and Clear cache… beside it."""
        row = QWidget(page)
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        self.store_summary = QLabel(row)
        self.clear_button = QPushButton("C&lear cache…", row)
        self.clear_button.setToolTip("Remove every cached answer (asks first, with the count)")
        self.clear_button.setEnabled(self.clearing is not None)
        self.clear_button.clicked.connect(self.ask_clear)
        line.addWidget(self.store_summary)
        line.addWidget(self.clear_button)
        line.addStretch(1)
        self._show_store()
        return row

    def _show_store(self, *_: object) -> None:
        stats = self.context.feed.current if self.context is not None else None
        store = (stats or {}).get("store") or {}
        if self.store_summary is None or not store or not self.isVisible():
            return  # a hidden window is brought up to date when it is shown (the table is read again)
        entries = int(store.get("entries", 0))
        self.store_summary.setText(f"{plural(entries, 'entry', 'entries')}, {human_bytes(store.get('bytes', 0))}")

    # -- applying --------------------------------------------------------------------------------

    def changes(self) -> dict[str, Any]:
        """Only the fields the user changed, as the engine takes them."""
        return {name: field.wire_value() for name, field in self.fields.items() if field.changed()}

    def ask_clear(self) -> None:
        if self.clearing is not None:
            self.clearing.ask(self, self._cleared)

    def _cleared(self, answer: Any) -> None:
        removed = int(answer.get("removed", 0))
        self.status.setText(f"Cleared {plural(removed, 'cached answer')}.")

    def _apply_login(self) -> str:
        """Start at login as the boxes say (the platform's own entry, written at once): what happened."""
        if not self.login.changed():
            return ""
        try:
            return self.login.apply()
        except AutostartError as error:
            return f"but {error}"

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

    def restart_engine_now(self) -> None:
        """Restart the engine the app started, so that it reads the settings saved; say when it is back."""
        if self.context is None or self.context.engine.cannot_restart() is not None:
            return
        engine = self.context.engine
        self.restart_engine.setEnabled(False)
        self.status.setText("Restarting the engine…")

        def back(_url: str) -> None:
            engine.ready.disconnect(back)
            self.restart_engine.hide()
            self.status.setText("The engine is back, with the settings saved.")
            self.load()

        engine.ready.connect(back)
        self.context.errors.run("restart the engine", engine.restart())

    def _offer_restart(self, changes: Mapping[str, Any]) -> None:
        needs = any(
            isinstance(change, Mapping) and change.get("result") == "needs engine restart"
            for change in changes.values()
        )
        self.restart_engine.setVisible(needs)
        if needs and self.context is not None:
            why = self.context.engine.cannot_restart()
            self.restart_engine.setEnabled(why is None)
            self.restart_engine.setToolTip(
                why or "Stop the engine and start it again with the saved settings (a moment without the cache)"
            )

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
        self._offer_restart(answer.get("changes", {}))
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

    def cancel(self) -> None:
        """Forget the edits (the form is rebuilt from the engine) and close."""
        self.load()
        self.close()

    def _written_elsewhere(self) -> None:
        if not self.edited() and self.context is not None:  # never drop the user's unsaved edits
            self._read_table()

    def _edited(self) -> None:
        self._update_buttons()
        self.checking.start()

    def _update_buttons(self) -> None:
        refused = any(field.error.text() for field in self.fields.values())  # fix what is marked first
        self.apply_button.setEnabled(not self.busy and self.edited() and not refused)

    def edited(self) -> bool:
        """Whether any field differs from what was loaded."""
        return self.login.changed() or any(field.changed() for field in self.fields.values())

    # -- remembering -----------------------------------------------------------------------------

    def _remembered_tab(self) -> int:
        try:
            return int(self.settings.value("settings/tab", 0))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return 0

    def _tab_changed(self, index: int) -> None:
        self.settings.setValue("settings/tab", index)

    def save_state(self) -> None:
        self.settings.setValue("settings/geometry", self.saveGeometry())
        self.settings.setValue("settings/tab", self.tabs.currentIndex())
        self.settings.sync()

    def showEvent(self, event: QShowEvent) -> None:
        if not self.fields or not self.edited():
            self.load()  # fresh sources and values each time the window opens
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        super().closeEvent(event)


def build_settings_window(context: AppContext) -> QWidget:
    """The app's window factory for Settings."""
    return SettingsWindow(context)
