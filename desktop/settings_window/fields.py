"""One form field per setting, chosen by the setting's kind in the engine's table, never by its name.

A :class:`Field` holds the row the engine gave (``GET /-/settings``), an editor for its kind, a line
saying what the setting does and where its value comes from, and a line for the engine's refusal.
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

from PySide6.QtCore import Qt, Signal, QObject
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget,
)

NOT_SET = "(not set)"


def source_text(row: Mapping[str, Any]) -> str:
    """Where the value comes from, as a user reads it."""
    source, where = row.get("source"), row.get("set_by")
    if source == "environment":
        return f"set by {where} (read-only here: change it there)"
    if source == "flag":
        return f"set by the flag {where} (read-only here)"
    if source == "file":
        return f"value from {where}"
    return "value: the default"


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
        self.info = QLabel(self._info_text())
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        small = self.info.font()
        small.setPointSizeF(max(small.pointSizeF() * 0.85, 7.0))
        self.info.setFont(small)
        column.addWidget(self.info)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        bold = self.error.font()
        bold.setBold(True)
        self.error.setFont(bold)
        self.error.hide()
        column.addWidget(self.error)
        tooltip = f"{self.name}: {row.get('help', '')}\nAccepted: {row.get('accepted', '')}"
        for widget in (self.editor, self.info):
            widget.setToolTip(tooltip)
        self.editor.setAccessibleName(self.name)
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
            box.setCheckState(Qt.CheckState.PartiallyChecked if value is None
                              else Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)
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
        edit = QLineEdit(display_text(row, row.get("value"), row.get("human")))
        default = display_text(row, row.get("default"), row.get("default_human"))
        edit.setPlaceholderText(f"default: {default}" if default else NOT_SET)
        edit.setClearButtonEnabled(True)
        edit.textEdited.connect(self.edited)
        return edit

    def _switched(self, state: Qt.CheckState) -> None:
        assert isinstance(self.editor, QCheckBox)
        self.editor.setText(NOT_SET if state == Qt.CheckState.PartiallyChecked
                            else "on" if state == Qt.CheckState.Checked else "off")
        self.edited.emit()

    def _info_text(self) -> str:
        row = self.row
        parts = [str(row.get("help", "")), source_text(row)]
        if not row.get("editable", True):
            parts.reverse()  # where a read-only value comes from is what matters first
        if row.get("effect") and row.get("effect") != "nothing":
            parts.append(f"a change needs an {row['effect']}")
        if row.get("pending"):
            parts.append("changed, not in force until that restart")
        return " · ".join(part for part in parts if part)

    def _browse(self) -> None:
        assert isinstance(self.editor, QLineEdit)
        start = self.editor.text() or ""
        if "directory" in str(self.row.get("accepted", "")):
            chosen = QFileDialog.getExistingDirectory(self.widget, self.name, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self.widget, self.name, start)
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
