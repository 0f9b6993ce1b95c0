"""Windows: the ``Ollacache`` value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``.

:func:`run_value` makes the command line and :func:`split_run_value` reads it back as the C runtime
splits it (pure functions, tested on every OS); only :class:`RunKey`'s registry calls are Windows-only.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from desktop.autostart.base import APP_NAME

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


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
