"""macOS: a LaunchAgent, ``~/Library/LaunchAgents/<LABEL>.plist``, with ``RunAtLoad``; launchd loads it
at the next login (enabling does not load it now, which would start a second app at once).

:func:`launch_agent` makes the property list (a pure function, tested on every OS); :class:`LaunchAgent`
writes, reads and removes the file.
"""

from __future__ import annotations

import plistlib
from collections.abc import Sequence
from pathlib import Path

from core.config.private import write_private
from desktop.autostart.base import AutostartError

LABEL = "org.ollacache.tray"


def launch_agent(command: Sequence[str], label: str = LABEL) -> bytes:
    """The LaunchAgent property list (XML) that runs ``command`` once at login, in the graphical session
    only; it is not kept alive, so Quit stays quit."""
    return plistlib.dumps(
        {
            "Label": label,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "LimitLoadToSessionType": "Aqua",
            "ProcessType": "Interactive",
        }
    )


def launch_agent_path(home: Path | None = None, label: str = LABEL) -> Path:
    """``~/Library/LaunchAgents/<label>.plist``, where launchd looks for a user's agents at login."""
    return (home or Path.home()) / "Library" / "LaunchAgents" / f"{label}.plist"


class LaunchAgent:
    """The LaunchAgent at ``path`` (see :func:`launch_agent_path`)."""

    def __init__(self, path: Path, label: str = LABEL) -> None:
        self.path, self.label = path, label

    def write(self, command: Sequence[str]) -> None:
        write_private(self.path, launch_agent(command, self.label))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> list[str] | None:
        try:
            agent = plistlib.loads(self.path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except plistlib.InvalidFileException as error:
            raise AutostartError(f"{self.path} is not a property list: {error}") from None
        if agent.get("Disabled") or not agent.get("RunAtLoad"):
            return None
        return [str(argument) for argument in agent.get("ProgramArguments", [])] or None
