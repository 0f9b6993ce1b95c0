"""One form field per setting, chosen by the setting's kind in the engine's table, never by its name.

A :class:`Field` holds the row the engine gave (``GET /-/settings``), an editor for its kind, a line
saying what the setting does (and where a value set elsewhere comes from), and a line under it for the
engine's refusal. A text field with no value of its own is empty and shows the value in force, greyed, with
where it comes from ("2 GiB (default)", "6 (detected)"), and the line under it says why where there is a reason
("Detected: one thread per performance core.").
:meth:`Field.changed` tells whether the user changed it, :meth:`Field.wire_value` gives what
``PUT /-/settings`` should get (``None``: back to the default).

Kinds: switch as a check box (three states when the default is "not set"), choice as a combo box
(with a "not set" entry when the default is none), path as text with a Browse button, and every
other kind (text, number, bytes, duration, list, table) as text, byte counts and durations in their
human form ("2 GiB", "30d").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

NOT_SET = "(not set)"
EFFECTS = {
    "engine restart": "Takes effect when the engine restarts.",
    "Ollama restart": "Takes effect when Ollama restarts (Ollacache restarts the Ollama it started).",
}
PENDING = {
    "engine restart": "Your change is saved and takes effect when the engine restarts.",
    "Ollama restart": "Your change is saved and takes effect when Ollama restarts.",
}


def source_text(row: Mapping[str, Any]) -> str:
    """Where a value set outside this window comes from, as a user reads it ("" for the file or a default)."""
    source, where = row.get("source"), row.get("set_by")
    if source == "environment":
        return f"Set by the environment variable {where}: change it there."
    if source == "flag":
        return f"Set by {where} on the engine's command line."
    return ""


def in_force_text(row: Mapping[str, Any]) -> str:
    """The value in force and where it comes from, for an empty field: "2 GiB (default)", "6 (detected)" (the
    reason, "detected: one thread per performance core", is too long for the field: :func:`reason_text` has it)."""
    shown = row.get("shown") or {}
    text, origin = shown.get("text"), shown.get("origin")
    if not text:
        return NOT_SET
    return f"{text} ({str(origin).partition(': ')[0]})" if origin else str(text)


def reason_text(row: Mapping[str, Any]) -> str:
    """Why an empty field's value in force is what it is, as a sentence ("Detected: one thread per performance
    core."), where the engine gives a reason after its origin; "" otherwise."""
    shown = row.get("shown") or {}
    origin, _, reason = str(shown.get("origin") or "").partition(": ")
    if not shown.get("text") or not reason:
        return ""
    return f"{origin[:1].upper()}{origin[1:]}: {reason.rstrip('.')}."


def display_text(row: Mapping[str, Any], value: Any, human: str | None) -> str:
    """A value as the text field shows it."""
    if value is None:
        return ""
    if human:
        return human
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{name}={item}" for name, item in value.items())
    return str(value)


class Field(QObject):
    """One setting's editor, description and error line; ``edited`` when the user changes it."""

    edited = Signal()

    def __init__(self, row: Mapping[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = dict(row)
        self.name: str = row["name"]
        self.kind: str = row["kind"]
        self.widget = QWidget(parent)
        column = QVBoxLayout(self.widget)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        self.editor = self._make_editor()
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.editor, 1)
        self.browse: QPushButton | None = None
        if self.kind == "path":
            self.browse = QPushButton("Browse…")
            self.browse.clicked.connect(self._browse)
            line.addWidget(self.browse)
        column.addLayout(line)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        bold = self.error.font()
        bold.setBold(True)
        self.error.setFont(bold)
        palette = self.error.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor.fromHsl(0, 180, 110))  # red, on light and dark
        self.error.setPalette(palette)
        self.error.hide()
        column.addWidget(self.error)
        self.info = QLabel(self._info_text())
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        small = self.info.font()
        small.setPointSizeF(max(small.pointSizeF() * 0.85, 7.0))
        self.info.setFont(small)
        column.addWidget(self.info)
        self.label_text: str = str(row.get("label") or self.name)
        tooltip = f"{row.get('help', '')}\n{self.name} in config.toml" + (f", {row['env']}" if row.get("env") else "")
        for widget in (self.editor, self.info):
            widget.setToolTip(tooltip)
        self.editor.setAccessibleName(self.label_text)
        self.editor.setAccessibleDescription(str(row.get("help", "")))
        self.editable = bool(row.get("editable", True))
        if isinstance(self.editor, QLineEdit):
            self.editor.setReadOnly(not self.editable)  # still focusable and selectable, as read-only text
            self.editor.setClearButtonEnabled(self.editable)
        else:
            self.editor.setEnabled(self.editable)
        if self.browse is not None:
            self.browse.setEnabled(self.editable)
        self._initial = self._current()

    def _make_editor(self) -> QWidget:
        row = self.row
        if self.kind == "switch":
            box = QCheckBox()
            if row.get("default") is None:
                box.setTristate(True)
            value = row.get("value")
            box.setCheckState(
                Qt.CheckState.PartiallyChecked
                if value is None
                else Qt.CheckState.Checked
                if value
                else Qt.CheckState.Unchecked
            )
            box.setText(NOT_SET if value is None else "on" if value else "off")
            box.checkStateChanged.connect(self._switched)
            return box
        if self.kind == "choice":
            combo = QComboBox()
            if row.get("default") is None:
                combo.addItem(NOT_SET, None)
            for choice in row.get("choices", []):
                combo.addItem(str(choice), choice)
            combo.setCurrentIndex(max(combo.findData(row.get("value")), 0))
            combo.currentIndexChanged.connect(self.edited)
            return combo
        own = row.get("source") != "default"  # a default is shown greyed, as the value in force
        edit = QLineEdit(display_text(row, row.get("value"), row.get("human")) if own else "")
        edit.setPlaceholderText(in_force_text(row))
        edit.setClearButtonEnabled(True)
        edit.textEdited.connect(self.edited)
        return edit

    def _switched(self, state: Qt.CheckState) -> None:
        assert isinstance(self.editor, QCheckBox)
        self.editor.setText(
            NOT_SET if state == Qt.CheckState.PartiallyChecked else "on" if state == Qt.CheckState.Checked else "off"
        )
        self.edited.emit()

    def _info_text(self) -> str:
        row = self.row
        parts = [str(row.get("help", "")), source_text(row), reason_text(row)]
        if not row.get("editable", True):
            parts.reverse()  # where a read-only value comes from is what matters first
        if row.get("pending"):
            parts.append(PENDING.get(str(row.get("effect")), ""))
        elif row.get("effect") in EFFECTS and row.get("editable", True):
            parts.append(EFFECTS[str(row["effect"])])
        return " ".join(part for part in parts if part)

    def _browse(self) -> None:
        assert isinstance(self.editor, QLineEdit)
        start = self.editor.text() or ""
        start = start or str((self.row.get("shown") or {}).get("text") or "")
        if self.row.get("folder"):
            chosen = QFileDialog.getExistingDirectory(self.widget, self.label_text, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self.widget, self.label_text, start)
        if chosen:
            self.editor.setText(chosen)
            self.edited.emit()

    def _current(self) -> Any:
        editor = self.editor
        if isinstance(editor, QCheckBox):
            return editor.checkState()
        if isinstance(editor, QComboBox):
            return editor.currentData()
        assert isinstance(editor, QLineEdit)
        return editor.text().strip()

    def changed(self) -> bool:
        return self.editable and self._current() != self._initial

    def wire_value(self) -> Any:
        """What the engine should get: JSON of the setting's kind where the text is plain (a whole number
        as a number), else the text as typed for the engine to parse; an empty field means the default."""
        current = self._current()
        if isinstance(self.editor, QCheckBox):
            return None if current == Qt.CheckState.PartiallyChecked else current == Qt.CheckState.Checked
        if isinstance(self.editor, QComboBox):
            return current
        if current == "":
            return None
        if self.kind in ("number", "bytes", "duration"):
            try:
                return int(current)
            except ValueError:
                return current
        return current

    def set_value_text(self, text: str) -> None:
        """Type ``text`` into a text field (as a user would)."""
        assert isinstance(self.editor, QLineEdit)
        self.editor.setText(text)
        self.edited.emit()

    def show_error(self, message: str | None) -> None:
        self.error.setText(f"⚠ {message}" if message else "")
        self.error.setVisible(bool(message))
        # a form in a scroll area keeps the row's old height when a wrapped line appears in it, and draws the
        # line over the help below: asked again once the event loop has laid the line out, the row grows
        QTimer.singleShot(0, self.widget, self.widget.updateGeometry)
