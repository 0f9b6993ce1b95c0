"""Start the tray app at login: off until the user turns it on, with a separate "start hidden".

Each platform keeps the setting where its session looks for it, and nowhere else (no file of ours
remembers it: what the platform holds is the truth, so a user who removes the entry by hand sees the
toggle off):

- Linux and other XDG desktops: an autostart entry, ``$XDG_CONFIG_HOME/autostart/ollacache.desktop``
  (``~/.config`` when the variable is unset or not absolute), in the Desktop Entry format.
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/<LABEL>.plist``, with ``RunAtLoad``; launchd loads it
  at the next login (enabling does not load it now, which would start a second app at once).
- Windows: the ``Ollacache`` value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``.

The command is the one that starts the tray app (the frozen executable, or this Python with
``-m desktop``), with ``--hidden`` for "start hidden". Each format lives in a module of its own
(:mod:`desktop.autostart.xdg`, :mod:`desktop.autostart.launchd`, :mod:`desktop.autostart.windows`), made by
pure functions and read back by their inverses, so they are tested on every OS; only the registry calls
are Windows-only. This module picks the platform's place and holds what the tray menu calls.

Files are written privately (0600, atomically), as everything Ollacache writes: neither the autostart
specification nor launchd asks for more, since the session manager and launchd read them as the user
(launchd refuses only agents that others can write), and no execute bit is needed outside the desktop
folder.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from desktop.autostart.base import APP_NAME, HIDDEN_FLAG, AutostartError, Backend, launch_command
from desktop.autostart.launchd import LABEL, LaunchAgent, launch_agent, launch_agent_path
from desktop.autostart.windows import RUN_KEY, RunKey, run_value, split_run_value
from desktop.autostart.xdg import (
    ENTRY_NAME,
    XdgEntry,
    desktop_entry,
    exec_value,
    read_desktop_entry,
    split_exec,
    xdg_autostart_path,
)

__all__ = [
    "APP_NAME",
    "ENTRY_NAME",
    "HIDDEN_FLAG",
    "LABEL",
    "RUN_KEY",
    "AutostartError",
    "Backend",
    "LaunchAgent",
    "RunKey",
    "XdgEntry",
    "backend",
    "desktop_entry",
    "disable",
    "enable",
    "exec_value",
    "is_enabled",
    "launch_agent",
    "launch_agent_path",
    "launch_command",
    "read_desktop_entry",
    "run_value",
    "split_exec",
    "split_run_value",
    "starts_hidden",
    "xdg_autostart_path",
]


def backend(platform: str | None = None) -> Backend:
    """Where this platform keeps start at login (the environment is read now, not at import)."""
    platform = platform or sys.platform
    if platform == "win32":
        return RunKey()
    if platform == "darwin":
        return LaunchAgent(launch_agent_path())
    return XdgEntry(xdg_autostart_path())


# --- what the tray menu and the settings window call ------------------------------------------------


def enable(hidden: bool, base: Sequence[str] | None = None) -> None:
    """Start the tray app at login (replacing an earlier entry), hidden or with its window.

    ``base`` is the command without ``--hidden`` (by default :func:`launch_command`'s)."""
    command = [*(base or launch_command(False)), *([HIDDEN_FLAG] if hidden else [])]
    try:
        backend().write(command)
    except OSError as error:
        raise AutostartError(f"could not turn on start at login: {error}") from None


def disable() -> None:
    """Do not start the tray app at login; nothing happens if it was off."""
    try:
        backend().remove()
    except OSError as error:
        raise AutostartError(f"could not turn off start at login: {error}") from None


def _started() -> list[str] | None:
    try:
        return backend().read()
    except OSError as error:
        raise AutostartError(f"could not read the start at login setting: {error}") from None


def is_enabled() -> bool:
    """Whether the tray app starts at login."""
    return _started() is not None


def starts_hidden() -> bool:
    """Whether it starts at login hidden (False when it does not start at login)."""
    command = _started()
    return command is not None and command[-1:] == [HIDDEN_FLAG]
