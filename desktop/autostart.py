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
``-m desktop``), with ``--hidden`` for "start hidden". The contents are made by pure functions
(:func:`desktop_entry`, :func:`launch_agent`, :func:`run_value`) and read back by their inverses, so
they are tested on every OS; only the registry calls are Windows-only.

Files are written privately (0600, atomically), as everything Ollacache writes: neither the autostart
specification nor launchd asks for more, since the session manager and launchd read them as the user
(launchd refuses only agents that others can write), and no execute bit is needed outside the desktop
folder.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from core.config.private import write_private

APP_NAME = "Ollacache"
ENTRY_NAME = "ollacache.desktop"
LABEL = "org.ollacache.tray"
HIDDEN_FLAG = "--hidden"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
_COMMENT = "Caching proxy for Ollama: repeated requests answered at once"

# Characters that make an Exec argument need quotes, and those escaped inside the quotes.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
_ESCAPED_IN_QUOTES = set('"`$\\')


class AutostartError(Exception):
    """Start at login could not be changed or read; the message says why in one sentence."""


def launch_command(hidden: bool, *, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """The command line that starts the tray app: the frozen executable itself, or this Python with
    ``-m desktop``; ``--hidden`` last when it should start without opening a window."""
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    executable = executable or sys.executable
    command = [executable] if frozen else [executable, "-m", "desktop"]
    return [*command, HIDDEN_FLAG] if hidden else command


# --- Linux: a Desktop Entry in the autostart folder ------------------------------------------------

def _escape_string(value: str) -> str:
    """A Desktop Entry string value: backslash, newline, tab and carriage return escaped."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r"))


def _unescape_string(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(following, "\\" + following))
        else:
            out.append(char)
    return "".join(out)


def _quote_argument(argument: str) -> str:
    if argument and not _RESERVED.intersection(argument):
        return argument.replace("%", "%%")
    inner = "".join("\\" + c if c in _ESCAPED_IN_QUOTES else c for c in argument)
    return '"' + inner.replace("%", "%%") + '"'


def exec_value(argv: Sequence[str]) -> str:
    """``argv`` as the value of an ``Exec`` key: each argument quoted when it holds a reserved character
    (with ``"``, `````, ``$`` and ``\\`` escaped inside the quotes), ``%`` doubled so no field code is
    read, then the string escapes (which a reader undoes first)."""
    if "=" in argv[0]:
        raise AutostartError(f"cannot start {argv[0]} at login: an Exec program path may not contain '='")
    return _escape_string(" ".join(_quote_argument(argument) for argument in argv))


def split_exec(value: str) -> list[str]:
    """The arguments of an ``Exec`` value, undoing :func:`exec_value` (string escapes, then quoting)."""
    text = _unescape_string(value)
    argv: list[str] = []
    current: list[str] = []
    started = quoted = False  # started: a quote opened the argument, so an empty one counts
    i = 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPED_IN_QUOTES:
            current.append(text[i + 1])
            i += 1
        elif char == '"':
            quoted, started = not quoted, True
        elif char == "%" and text[i + 1:i + 2] == "%":
            current.append("%")
            i += 1
        elif char == " " and not quoted:
            if started or current:
                argv.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
        i += 1
    if started or current:
        argv.append("".join(current))
    return argv


def desktop_entry(command: Sequence[str]) -> str:
    """The autostart entry that runs ``command`` at login."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",  # every key here is in 1.0; validators of some distributions know no later one
        f"Name={APP_NAME}",
        f"Comment={_COMMENT}",
        f"Exec={exec_value(command)}",
        f"TryExec={_escape_string(command[0])}",  # skipped, not failing, once the app is uninstalled
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        "",
    ]
    return "\n".join(lines)


def read_desktop_entry(text: str) -> dict[str, str]:
    """The keys of the ``[Desktop Entry]`` group with their values as written (escapes kept)."""
    keys: dict[str, str] = {}
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
        elif group == "Desktop Entry" and "=" in line:
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def _entry_enabled(keys: dict[str, str]) -> bool:
    """Whether a session starts the entry: not ``Hidden``, not switched off in GNOME's Startup Applications."""
    return (keys.get("Hidden", "false") != "true" and keys.get("X-GNOME-Autostart-enabled", "true") != "false"
            and "Exec" in keys)


def xdg_autostart_path(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart/ollacache.desktop``; a relative or empty XDG_CONFIG_HOME is ignored,
    as the base directory specification says."""
    environ = dict(os.environ) if environ is None else environ
    config = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path(environ.get("HOME") or Path.home()) / ".config"
    return base / "autostart" / ENTRY_NAME


# --- macOS: a LaunchAgent ---------------------------------------------------------------------------

def launch_agent(command: Sequence[str], label: str = LABEL) -> bytes:
    """The LaunchAgent property list (XML) that runs ``command`` once at login, in the graphical session
    only; it is not kept alive, so Quit stays quit."""
    return plistlib.dumps({
        "Label": label,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
    })


def launch_agent_path(home: Path | None = None, label: str = LABEL) -> Path:
    """``~/Library/LaunchAgents/<label>.plist``, where launchd looks for a user's agents at login."""
    return (home or Path.home()) / "Library" / "LaunchAgents" / f"{label}.plist"


# --- Windows: the Run value -------------------------------------------------------------------------

def run_value(command: Sequence[str]) -> str:
    """The ``Run`` value: the command line, quoted as Windows programs split it."""
    return subprocess.list2cmdline(list(command))


def split_run_value(value: str) -> list[str]:
    """The arguments of a Windows command line, as the C runtime splits it: the inverse of
    :func:`run_value` (backslashes are literal except before a double quote)."""
    argv: list[str] = []
    current: list[str] = []
    started = quoted = False
    backslashes = 0
    for char in value:
        if char == "\\":
            backslashes += 1
            continue
        if char == '"':
            current.append("\\" * (backslashes // 2))
            if backslashes % 2:
                current.append('"')
            else:
                quoted, started = not quoted, True
        else:
            current.append("\\" * backslashes)
            if char in " \t" and not quoted:
                if started or "".join(current):
                    argv.append("".join(current))
                current, started = [], False
            else:
                current.append(char)
        backslashes = 0
    current.append("\\" * backslashes)
    if started or "".join(current):
        argv.append("".join(current))
    return argv


# --- where each platform keeps it -------------------------------------------------------------------

class Backend(Protocol):
    """One platform's place for start at login."""

    def write(self, command: Sequence[str]) -> None: ...
    def remove(self) -> None: ...
    def read(self) -> list[str] | None:
        """The command started at login, or None when nothing is."""


class XdgEntry:
    """The autostart entry at ``path`` (see :func:`xdg_autostart_path`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, command: Sequence[str]) -> None:
        write_private(self.path, desktop_entry(command))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> list[str] | None:
        try:
            keys = read_desktop_entry(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):  # no entry, or no folder to hold one
            return None
        return split_exec(keys["Exec"]) if _entry_enabled(keys) else None


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


class RunKey:
    """The value ``name`` under HKCU's Run key (Windows only: :mod:`winreg` is imported when used)."""

    def __init__(self, name: str = APP_NAME) -> None:
        self.name = name

    def write(self, command: Sequence[str]) -> None:
        import winreg  # noqa: PLC0415 - exists on Windows only
        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, self.name, 0, winreg.REG_SZ, run_value(command))

    def remove(self) -> None:
        import winreg  # noqa: PLC0415
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, self.name)
        except FileNotFoundError:
            pass

    def read(self) -> list[str] | None:
        import winreg  # noqa: PLC0415
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                value, _ = winreg.QueryValueEx(key, self.name)
        except FileNotFoundError:
            return None
        return split_run_value(str(value))


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
