"""What every platform's place for start at login shares: the error, the :class:`Backend` protocol, the
app's name, and the command that starts the tray app."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.frozen import HIDDEN_FLAG as HIDDEN_FLAG  # the flag of "start hidden", for the platforms' modules
from core.frozen import tray_command

APP_NAME = "Ollacache"


class AutostartError(Exception):
    """Start at login could not be changed or read; the message says why in one sentence."""


def launch_command(hidden: bool, *, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """The command line that starts the tray app: the frozen executable itself, or this Python with
    ``-m desktop``; ``--hidden`` last when it should start without opening a window."""
    return tray_command(hidden, frozen=frozen, executable=executable)


class Backend(Protocol):
    """One platform's place for start at login."""

    def write(self, command: Sequence[str]) -> None: ...
    def remove(self) -> None: ...
    def read(self) -> list[str] | None:
        """The command started at login, or None when nothing is."""
