"""A question asked before something that cannot be undone (clearing the cache, revoking an API key).

Cancel is the default button, so Enter or Escape keeps everything; the button that acts is named for what it
does. The box is opened with ``open()``, never ``exec()``: a nested event loop would stall the asyncio tasks
under qasync.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget


def confirm(
    parent: QWidget | None, title: str, text: str, act: str, acted: Callable[[], None], closed: Callable[[], None]
) -> QMessageBox:
    """Open the question ``text`` with a button ``act`` and Cancel; ``closed`` is called when it closes, then
    ``acted`` if ``act`` was pressed. Returns the open box (tests press its buttons)."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        parent,
    )
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Yes).setText(act)

    def answered() -> None:
        closed()
        box.deleteLater()
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            acted()

    box.finished.connect(lambda _result: answered())
    box.open()
    return box
