"""A folder's path shown to copy, where the desktop cannot open the folder itself (no file manager)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox


def show_path(title: str, text: str, path: Path) -> QMessageBox:
    """A non-modal box with ``text`` and ``path`` (selectable), "Copy path" (copies, then closes) and Close; shown,
    and returned."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text)
    box.setInformativeText(str(path))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    copy = box.addButton("&Copy path", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(str(path)))
    box.setModal(False)
    box.show()
    return box
