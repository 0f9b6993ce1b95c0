"""Which process listens on a local port: how the engine finds an Ollama it did not start (the process that
serves the upstream address), so that its CPU and memory are charted like those of the Ollama it runs.

Listing sockets reads the kernel's socket tables: a few milliseconds, but after a burst of short connections
(tens of thousands in TIME_WAIT) far more, every time. So a process found is kept until it is gone, and only
when none is known is the table read again, at most every :data:`RECHECK_S` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

RECHECK_S = 60.0


@dataclass(frozen=True)
class Found:
    """The listening process (``pid``), or why it cannot be read (``unreadable``: another user's service, a
    platform that lists sockets to administrators only); both None when nothing listens."""

    pid: int | None = None
    unreadable: str | None = None


def find_listener(port: int) -> Found:
    """The process that listens on TCP ``port`` on this machine."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return Found(unreadable="this system shows the process behind a port to administrators only")
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            if connection.pid is None:
                return Found(
                    unreadable="it runs as another user (a system service, say), whose use Ollacache cannot read"
                )
            return Found(pid=connection.pid)
    return Found()


class Listener:
    """The process listening on ``port``: kept while it lives; while none is known, looked for at most every
    :data:`RECHECK_S` seconds."""

    def __init__(
        self, port: int, find: Callable[[int], Found] = find_listener, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.port = port
        self._find = find
        self._clock = clock
        self._found = Found()
        self._checked: float | None = None

    def current(self) -> Found:
        now = self._clock()
        if self._found.pid is not None and psutil.pid_exists(self._found.pid):
            return self._found
        gone = self._found.pid is not None
        if gone or self._checked is None or now - self._checked >= RECHECK_S:
            self._found, self._checked = self._find(self.port), now
        return self._found
