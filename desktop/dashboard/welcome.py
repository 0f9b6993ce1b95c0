"""The first run's welcome, at the top of the Overview until the cache holds its first answer: what Ollacache
does, the address to point tools at (or, with port takeover, that they need no change), and Ollama's state in a
sentence; when Ollama is not installed, a link to its download page and "Detect again".

Nothing is said about an address before the engine has told it: the welcome waits for the engine instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFont, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.availability import not_ollama, ollama_actions
from desktop.dashboard import format as fmt

WHAT = (
    "Ollacache answers prompts and embeddings your tools have asked before from its cache, in well under a "
    "millisecond, instead of having Ollama compute them again. It sits between your tools and Ollama and "
    "changes nothing else."
)
DOWNLOAD = "https://ollama.com/download"


def ollama_sentence(ollama: Mapping[str, Any] | None) -> str:
    """Ollama's state as one plain sentence for a newcomer."""
    if not ollama:
        return "Looking for Ollama…"
    state = ollama.get("state")
    version = f" {ollama['version']}" if ollama.get("version") else ""
    if state == "running":
        return f"Ollama{version} is running: Ollacache started it and looks after it."
    if not_ollama(ollama):
        return "A server that is not Ollama answers at Ollama's address; Ollacache forwards requests to it as they are."
    if state == "attached":
        return f"Ollama{version} is running (started outside Ollacache, which leaves it as it is)."
    if state in ("starting", "backing-off"):
        return "Ollama is starting…"
    if state == "not_installed":
        return (
            "Ollama is not installed on this computer. Ollacache needs it to answer new prompts; cached "
            "answers work without it."
        )
    if state == "unhealthy":
        return "Ollama is not answering. Cached answers are still served."
    if state == "failed":
        return f"Ollama could not be started: {ollama.get('reason') or 'see its log on the Ollama tab'}."
    return "Ollama is not running. Cached answers are still served; new prompts wait until it runs."


class Welcome(QFrame):
    """The welcome; ``detect_requested()`` when the user asks to look for Ollama again."""

    detect_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel("Welcome to Ollacache")
        title_font = QFont(self.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.5)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.what = QLabel(WHAT)
        self.address = QLabel("Starting the cache…")
        self.copy = QPushButton("Co&py address")
        self.copy.clicked.connect(self._copy)
        self.copy.hide()
        self.ollama = QLabel(ollama_sentence(None))
        self.download = QPushButton("Dow&nload Ollama")
        self.download.clicked.connect(lambda: QDesktopServices.openUrl(QUrl(self._download)))
        self.detect = QPushButton("Detect aga&in")
        self.detect.setToolTip("Look for Ollama again (after installing it, or starting it yourself)")
        self.detect.clicked.connect(self.detect_requested)
        self.detect_note = QLabel()  # what the last Detect again found: it stays until Ollama's state changes
        self.detect_note.setWordWrap(True)
        self.detect_note.hide()
        for label in (self.what, self.address, self.ollama):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.copy)
        ollama_row = QHBoxLayout()
        ollama_row.addWidget(self.ollama, 1)
        ollama_row.addWidget(self.download)
        ollama_row.addWidget(self.detect)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.what)
        layout.addLayout(address_row)
        layout.addLayout(ollama_row)
        layout.addWidget(self.detect_note)
        self.url: str | None = None
        self._download = DOWNLOAD
        self.show_ollama(None)

    @Slot(str, bool)
    def set_address(self, url: str, takeover: bool = False) -> None:
        """The proxy's address as the engine told it; ``takeover``: it is Ollama's own, so tools need no change."""
        self.url = url
        if takeover:
            self.address.setText(f"Your tools need no change: Ollacache answers at Ollama's usual address, {url}.")
        else:
            self.address.setText(
                f"Point your tools at {url} instead of Ollama's address (for OpenAI-style tools: {url}/v1)."
            )
        self.copy.show()

    def say_not_found(self) -> None:
        """Detect again found nothing: said under the state, until the state changes."""
        self.detect_note.setText("Still not found. Install Ollama from its download page, then press Detect again.")
        self.detect_note.show()

    @Slot(dict)
    def show_ollama(self, ollama: Mapping[str, Any] | None) -> None:
        if not ollama or ollama.get("state") != "not_installed":
            self.detect_note.hide()
        self.ollama.setText(ollama_sentence(ollama))
        absent = bool(ollama) and ollama.get("state") == "not_installed"  # type: ignore[union-attr]
        self.download.setVisible(absent)
        self._download = str((ollama or {}).get("download") or DOWNLOAD)
        self.detect.setVisible(
            bool(ollama) and ollama_actions(ollama)["detect"].enabled and bool(ollama.get("managed", True))
        )  # type: ignore[union-attr]
        _, words, _ = fmt.ollama_state(ollama)
        self.setAccessibleDescription(f"Ollama: {words}")

    def _copy(self) -> None:
        if self.url:
            QGuiApplication.clipboard().setText(self.url)
            self.copy.setText("Copied")
