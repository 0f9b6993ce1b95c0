"""API keys…: the install's keys, opened from the General tab beside Share on my network.

A small window of its own rather than rows of the General tab: the keys are not settings (Apply, OK and Cancel
mean nothing to them: a key is made or revoked at once), and a newcomer who never shares never sees them. It
lists each key's name, when it was made and last used (``GET /-/keys``), makes one (New key…: asks a name,
then shows the key once in a read-only field with Copy) and revokes one (Revoke…: asks first, naming it). A
sentence on top says whether the keys are asked for now (sharing off: "Keys work once Share on my network is
on") and that the traffic is plain HTTP unless a certificate is set, read from ``GET /-/settings``.

Every call goes through :meth:`desktop.windows.AppContext.call` on the event loop; a refusal (a taken name)
is said on the window's own status line, where the user is looking. Questions are opened with ``open()``,
never ``exec()``: a nested event loop would stall the asyncio tasks under qasync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.control.answers import ListedKey, NewKey
from core.control.client import AsyncControlClient
from desktop.confirm import confirm
from desktop.windows import AppContext

SHOWN_ONCE = "Copy it now: it is not shown again."
ASK_NAME = "Who or what is this key for? A name such as alice-laptop (letters, digits, '.', '@', '_', '-'):"


def sharing_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """Who needs a key now, and whether the traffic is encrypted, from the settings table's ``rows``."""
    value = {row["name"]: row.get("value") for row in rows}
    pending = {row["name"] for row in rows if row.get("pending")}
    if value.get("proxy.share"):
        who = "Other computers on your network need one of these keys"
        who += " once the engine restarts." if "proxy.share" in pending else "."
    elif value.get("proxy.require_key") == "always":
        who = "Every client, this computer's too, needs one of these keys (Who must send an API key: always)."
    else:
        who = "Keys work once Share on my network is on (General tab); you can make them now."
    if value.get("proxy.tls_cert"):
        return who + " Traffic is HTTPS, with the certificate set."
    return who + " Traffic is plain HTTP unless a certificate is set: anyone on the network can read it."


def when(seconds: float | None) -> str:
    """A moment as a person reads it, in local time; "never" for a key not used yet."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M") if seconds else "never"


class KeysDialog(QDialog):
    """The keys, New key… and Revoke…. :attr:`asking` and :attr:`confirming` are the questions while open
    (tests answer them); :attr:`new_key` holds the key just made."""

    def __init__(self, context: AppContext | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Ollacache: API keys")
        self.note = QLabel("Reading the keys…")
        self.note.setWordWrap(True)
        self.listing = QTreeWidget()
        self.listing.setHeaderLabels(["Name", "Made", "Last used"])
        self.listing.setRootIsDecorated(False)
        self.listing.setToolTip("When a key was last used is written every few seconds.")
        self.listing.itemSelectionChanged.connect(self._selected)
        self.add_button = QPushButton("&New key…")
        self.add_button.setToolTip("Make a key for a person or a device; it is shown once, to copy.")
        self.add_button.clicked.connect(self.ask_name)
        self.revoke_button = QPushButton("&Revoke…")
        self.revoke_button.setToolTip("Stop the selected key from working (asks first).")
        self.revoke_button.clicked.connect(self.ask_revoke)
        self.revoke_button.setEnabled(False)
        self.made = QLabel()  # "New key for NAME. Copy it now: it is not shown again."
        self.made.setWordWrap(True)
        self.new_key = QLineEdit()
        self.new_key.setReadOnly(True)
        self.copy_button = QPushButton("&Copy")
        self.copy_button.clicked.connect(self.copy)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.asking: QInputDialog | None = None
        self.confirming: QMessageBox | None = None
        self.loaded = False
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.listing, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.add_button)
        actions.addWidget(self.revoke_button)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.shown_once = QWidget()  # the new key, hidden until one is made
        once = QVBoxLayout(self.shown_once)
        once.setContentsMargins(0, 0, 0, 0)
        once.addWidget(self.made)
        copy_line = QHBoxLayout()
        copy_line.addWidget(self.new_key, 1)
        copy_line.addWidget(self.copy_button)
        once.addLayout(copy_line)
        self.shown_once.hide()
        layout.addWidget(self.shown_once)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.resize(520, 380)

    # -- reading ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the keys and the sharing settings again (when each key was last used moves on)."""
        if self.context is None:
            return

        async def read(client: AsyncControlClient) -> tuple[list[ListedKey], list[Mapping[str, Any]]]:
            return await client.keys(), list((await client.settings()).get("settings", []))

        self.context.call("read the API keys", read, self._show, failed=self._failed("read the keys"))

    def _show(self, answer: tuple[list[ListedKey], list[Mapping[str, Any]]]) -> None:
        keys, rows = answer
        self.note.setText(sharing_note(rows))
        chosen = self.chosen()
        self.listing.clear()
        for key in keys:
            item = QTreeWidgetItem([key["name"], when(key["created"]), when(key["last_used"])])
            self.listing.addTopLevelItem(item)
            item.setSelected(key["name"] == chosen)
        if not keys:
            self.listing.addTopLevelItem(QTreeWidgetItem(["No keys yet: New key… makes one.", "", ""]))
            self.listing.topLevelItem(0).setDisabled(True)
        for column in (0, 1):
            self.listing.resizeColumnToContents(column)
        self.loaded = True
        self._selected()

    def names(self) -> list[str]:
        """The names listed (none while there are no keys)."""
        items = [self.listing.topLevelItem(index) for index in range(self.listing.topLevelItemCount())]
        return [item.text(0) for item in items if not item.isDisabled()]

    def chosen(self) -> str | None:
        picked = [item for item in self.listing.selectedItems() if not item.isDisabled()]
        return picked[0].text(0) if picked else None

    def _selected(self) -> None:
        self.revoke_button.setEnabled(self.chosen() is not None)

    def _failed(self, what: str) -> Any:
        return lambda why: self.status.setText(f"Could not {what}: {why}")

    # -- making ----------------------------------------------------------------------------------

    def ask_name(self) -> QInputDialog:
        asking = QInputDialog(self)
        asking.setWindowTitle("New API key")
        asking.setLabelText(ASK_NAME)
        asking.setOkButtonText("Make key")
        asking.textValueSelected.connect(self.add)
        asking.finished.connect(lambda _result: self._closed_question(asking))
        self.asking = asking
        asking.open()
        return asking

    def add(self, name: str) -> None:
        """Make a key named ``name``; it shows once, ready to copy, and the list is read again."""
        if self.context is None:
            return
        self.status.setText(f"Making a key for {name.strip()}…")
        self.context.call(
            "make an API key",
            lambda client: client.add_key(name.strip()),
            self._made,
            failed=self._failed("make the key"),
        )

    def _made(self, answer: NewKey) -> None:
        self.made.setText(f"New key for {answer['name']}. {SHOWN_ONCE}")
        self.new_key.setText(answer["key"])
        self.shown_once.show()
        self.new_key.selectAll()
        self.new_key.setFocus()
        self.status.setText(
            "Give it to its user as Authorization: Bearer <key> (OLLAMA_API_KEY for Ollama's own clients)."
        )
        self.load()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.new_key.text())
        self.status.setText("The key is on the clipboard.")

    # -- revoking --------------------------------------------------------------------------------

    def ask_revoke(self) -> QMessageBox | None:
        name = self.chosen()
        if name is None:
            return None
        self.confirming = confirm(
            self,
            "Revoke API key",
            f"Revoke the key {name!r}?\nWhatever uses it is refused within seconds; this cannot be undone.",
            "Revoke",
            lambda: self._revoke(name),
            self._closed_confirmation,
        )
        return self.confirming

    def _closed_confirmation(self) -> None:
        self.confirming = None

    def _revoke(self, name: str) -> None:
        if self.context is None:
            return
        self.context.call(
            "revoke an API key",
            lambda client: client.revoke_key(name),
            lambda _answer: self._revoked(name),
            failed=self._failed(f"revoke {name}"),
        )

    def _revoked(self, name: str) -> None:
        self.status.setText(f"Revoked {name}.")
        if self.made.text().startswith(f"New key for {name}."):
            self.shown_once.hide()  # the key shown is no key any more
            self.new_key.clear()
        self.load()

    def _closed_question(self, asking: QInputDialog) -> None:
        self.asking = None
        asking.deleteLater()

    def showEvent(self, event: QShowEvent) -> None:
        self.load()  # fresh each time it opens: when each key was last used moves on
        super().showEvent(event)

    def done(self, result: int) -> None:
        # a key is shown once: closing the window forgets it, so it is not there to read when it opens again
        self.new_key.clear()
        self.shown_once.hide()
        super().done(result)
