"""The banners above the dashboard's tabs, for states that change what the cache does and must not be missed:
caching paused (with Resume), offline replay, and a cache store that fails (requests then pass straight to
Ollama). Each says what it means for the user's requests in a sentence; none shows while all is well."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

PAUSED = "Caching is paused: every request goes straight to Ollama, and nothing is stored."
OFFLINE = "Offline replay: cached answers are served and every other request is refused; Ollama is never called."


def store_failed(error: str) -> str:
    return f"The cache is not working ({error}): requests go straight to Ollama until it works again."


class Banner(QFrame):
    """One line of text on a tinted band, with an optional button at its end."""

    def __init__(self, hue: int, button: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor.fromHsl(hue, 150, 60 if dark else 215))
        self.setPalette(palette)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        line = QHBoxLayout(self)
        line.setContentsMargins(8, 4, 8, 4)
        line.addWidget(self.text, 1)
        self.button = QPushButton(button) if button else None
        if self.button is not None:
            line.addWidget(self.button)
        self.hide()

    def say(self, text: str | None) -> None:
        self.text.setText(text or "")
        self.setVisible(bool(text))


class Banners(QWidget):
    """The three banners; ``resume_requested()`` when the user presses Resume."""

    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paused = Banner(45, "Resume cac&hing")
        self.offline = Banner(210)
        self.store = Banner(0)
        assert self.paused.button is not None
        self.paused.button.clicked.connect(self.resume_requested)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for banner in (self.paused, self.offline, self.store):
            column.addWidget(banner)

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        self.paused.say(PAUSED if snapshot.get("paused") else None)
        self.offline.say(OFFLINE if snapshot.get("offline") else None)
        error = snapshot.get("store_error")
        self.store.say(store_failed(str(error)) if error else None)
