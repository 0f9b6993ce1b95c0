"""How the app starts itself, as Python or as a frozen (PyInstaller) executable.

Run from source, the engine is ``python -m core serve`` and the tray app ``python -m desktop``. Frozen,
``sys.executable`` is the bundle's own executable, which is the ``ollacache`` command: the engine is
``ollacache serve``, and the tray app the executable with no command (``--hidden`` alone to start in the
tray only). Every place that starts the engine or the app builds its command line here.
"""

from __future__ import annotations

import sys

HIDDEN_FLAG = "--hidden"


def is_frozen() -> bool:
    """Whether this process is a frozen executable (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def command(*args: str, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """The command line of ``ollacache ARGS...``: ``[python, "-m", "core", *args]``, or frozen
    ``[executable, *args]``."""
    frozen = is_frozen() if frozen is None else frozen
    executable = executable or sys.executable
    return [executable, *args] if frozen else [executable, "-m", "core", *args]


def tray_command(hidden: bool, *, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """The command line that starts the tray app: ``[python, "-m", "desktop"]``, or frozen the executable
    alone; ``--hidden`` last when it should start without opening a window."""
    frozen = is_frozen() if frozen is None else frozen
    executable = executable or sys.executable
    base = [executable] if frozen else [executable, "-m", "desktop"]
    return [*base, HIDDEN_FLAG] if hidden else base
