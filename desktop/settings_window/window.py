"""The Settings window: one tab per section of the engine's settings table, one row per setting.

Nothing here knows a setting by name, but for the cache folder's warning and Share on my network (API keys…
goes under it): the tabs and rows come from
``GET /-/settings`` (its "sections" in order, each row's "section", "kind", "label" and "level"), so a
setting added to the engine's table appears here as it is. The common settings show; "Show advanced
settings" reveals the rest. What is typed is checked, and saved by Apply and OK, as
:mod:`desktop.settings_window.applying` says (mixed into the window); a change that needs an engine
restart offers Restart engine now (:mod:`desktop.settings_window.restart`). Cancel puts the fields back as
loaded and closes.

Three tabs carry more than the table's rows: General has API keys… (:mod:`desktop.settings_window.keys`, a
window of its own: keys are made and revoked at once, not applied) and Start at login and Start hidden
(:mod:`desktop.settings_window.login`, applied with the rest, after the engine took its part), Cache has
Clear cache… (the tray menu's confirmation, :mod:`desktop.clear_cache`), and Performance the hardware,
the recommended values beside those in use, and Tune now (:mod:`desktop.settings_window.performance`).

The window remembers its size and tab in QSettings (organisation "Ollacache", application "Ollacache").
"""

from __future__ import annotations

from collections.abc import Mapping
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
from core.units import human_bytes, plural
from desktop.clear_cache import ClearCache
from desktop.settings_window.applying import CHECK_DELAY_MS, Applying
from desktop.settings_window.fields import Field
from desktop.settings_window.keys import KeysDialog
from desktop.settings_window.login import LoginRows
from desktop.settings_window.performance import PerformancePanel
from desktop.settings_window.restart import RestartEngineButton
from desktop.windows import AppContext

ORGANISATION = APPLICATION = "Ollacache"
EXPERT_NOTE = (
    "These settings reach the Ollama that Ollacache starts and supervises. The ollama command "
    "line and an Ollama started elsewhere (its own app, a service) do not see them."
)
_NOTES = {"Ollama server (expert)": EXPERT_NOTE}
SHARE = "proxy.share"  # API keys… goes right under it, where a newcomer who turns sharing on looks next


class SettingsWindow(Applying, QWidget):
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
        self.keys: KeysDialog | None = None  # built when first opened
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
        self.restart_engine = RestartEngineButton(context, self.status)
        self.restart_engine.restarted.connect(self.load)
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
            if field.name == SHARE:
                form.addRow("API keys:", self._keys_button(page))
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

    def _keys_button(self, page: QWidget) -> QPushButton:
        button = QPushButton("API &keys…", page)
        button.setToolTip("Make, list and revoke the keys other computers use while Ollacache is shared")
        button.setEnabled(self.context is not None)
        button.clicked.connect(self.show_keys)
        return button

    def show_keys(self) -> KeysDialog:
        if self.keys is None:
            self.keys = KeysDialog(self.context, self)
        self.keys.show()
        self.keys.raise_()
        self.keys.activateWindow()
        return self.keys

    def _show_store(self, *_: object) -> None:
        stats = self.context.feed.current if self.context is not None else None
        store = (stats or {}).get("store") or {}
        if self.store_summary is None or not store or not self.isVisible():
            return  # a hidden window is brought up to date when it is shown (the table is read again)
        entries = int(store.get("entries", 0))
        self.store_summary.setText(f"{plural(entries, 'entry', 'entries')}, {human_bytes(store.get('bytes', 0))}")

    def ask_clear(self) -> None:
        if self.clearing is not None:
            self.clearing.ask(self, self._cleared)

    def _cleared(self, answer: Any) -> None:
        removed = int(answer.get("removed", 0))
        self.status.setText(f"Cleared {plural(removed, 'cached answer')}.")

    def cancel(self) -> None:
        """Forget the edits (the form is rebuilt from the engine) and close."""
        self.load()
        self.close()

    def _written_elsewhere(self) -> None:
        if not self.edited() and self.context is not None:  # never drop the user's unsaved edits
            self._read_table()

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
