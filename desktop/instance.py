"""One app per user and config directory: a second launch hands over to the first and exits.

The first instance listens on a :class:`QLocalServer` named after the config directory; a second one
finds it there, sends ``show``, and exits; the first emits :attr:`SingleInstance.activated` and brings
its window forward.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_WAIT_MS = 1000
MESSAGE = b"show\n"


def server_name(config_dir: Path) -> str:
    """The local server's name: per user and config directory (tests each have their own)."""
    digest = hashlib.sha256(f"{getpass.getuser()}\0{config_dir.resolve()}".encode()).hexdigest()[:16]
    return f"ollacache-{digest}"


class SingleInstance(QObject):
    """``claim()`` is True for the first instance (which then listens); ``activated`` is emitted each time
    another launch asks it to come forward."""

    activated = Signal()

    def __init__(self, config_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(config_dir)
        self._server: QLocalServer | None = None

    def notify_running(self) -> bool:
        """Ask a running first instance to come forward; False if none answers."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_WAIT_MS):
            return False
        socket.write(MESSAGE)
        socket.waitForBytesWritten(CONNECT_WAIT_MS)
        socket.disconnectFromServer()
        return True

    def claim(self) -> bool:
        """Become the first instance, or tell the running one to come forward and return False."""
        if self.notify_running():
            return False
        QLocalServer.removeServer(self.name)  # a socket file left by a crashed instance
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            return True  # cannot listen: still run, only without the hand-over
        server.newConnection.connect(self._connection)
        self._server = server
        return True

    def _connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable():
                self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).strip() == MESSAGE.strip():
            self.activated.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
