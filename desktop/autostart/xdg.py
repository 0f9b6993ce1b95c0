"""Linux and other XDG desktops: an autostart entry, ``$XDG_CONFIG_HOME/autostart/ollacache.desktop``
(``~/.config`` when the variable is unset or not absolute), in the Desktop Entry format.

The entry is made by :func:`desktop_entry` and read back by :func:`read_desktop_entry` and
:func:`split_exec` (the inverse of :func:`exec_value`), pure functions tested on every OS;
:class:`XdgEntry` writes, reads and removes the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from core.config.private import write_private
from desktop.autostart.base import APP_NAME, AutostartError

ENTRY_NAME = "ollacache.desktop"
_COMMENT = "Caching proxy for Ollama: repeated requests answered at once"

# Characters that make an Exec argument need quotes, and those escaped inside the quotes.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
_ESCAPED_IN_QUOTES = set('"`$\\')


def _escape_string(value: str) -> str:
    """A Desktop Entry string value: backslash, newline, tab and carriage return escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


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
        elif char == "%" and text[i + 1 : i + 2] == "%":
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
    return (
        keys.get("Hidden", "false") != "true"
        and keys.get("X-GNOME-Autostart-enabled", "true") != "false"
        and "Exec" in keys
    )


def xdg_autostart_path(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart/ollacache.desktop``; a relative or empty XDG_CONFIG_HOME is ignored,
    as the base directory specification says."""
    environ = dict(os.environ) if environ is None else environ
    config = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path(environ.get("HOME") or Path.home()) / ".config"
    return base / "autostart" / ENTRY_NAME


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
