"""How the app starts itself, as Python or as a frozen (PyInstaller) executable.

Run from source, the engine is ``python -m core serve`` and the tray app ``python -m desktop``. Frozen,
``sys.executable`` is the bundle's own executable, which is the ``ollacache`` command: the engine is
``ollacache serve``, and the tray app the executable with no command (``--hidden`` alone to start in the
tray only). Every place that starts the engine or the app builds its command line here.

A frozen app on Linux runs with ``LD_LIBRARY_PATH`` pointing into its own bundle (PyInstaller's bootloader
prepends it, keeping the value it found in ``LD_LIBRARY_PATH_ORIG``). A program outside the bundle (Ollama)
gets the original value back, or no ``LD_LIBRARY_PATH`` when there was none; another instance of the app
gets the same, and ``PYINSTALLER_RESET_ENVIRONMENT=1``, so that its bootloader sets it up as a program of
its own rather than a worker of this one. Run from source, the environment is passed on as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

HIDDEN_FLAG = "--hidden"
LIBRARY_PATH = "LD_LIBRARY_PATH"
SAVED_LIBRARY_PATH = "LD_LIBRARY_PATH_ORIG"
RESET_ENVIRONMENT = "PYINSTALLER_RESET_ENVIRONMENT"


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


def outside_environment(inherited: Mapping[str, str], *, frozen: bool | None = None) -> dict[str, str]:
    """``inherited`` as a program outside the bundle should see it: when frozen, ``LD_LIBRARY_PATH``
    restored from ``LD_LIBRARY_PATH_ORIG`` (or removed) and the saved copy dropped."""
    environment = dict(inherited)
    if not (is_frozen() if frozen is None else frozen):
        return environment
    saved = environment.pop(SAVED_LIBRARY_PATH, None)
    if saved is None:
        environment.pop(LIBRARY_PATH, None)
    else:
        environment[LIBRARY_PATH] = saved
    return environment


def own_environment(inherited: Mapping[str, str], *, frozen: bool | None = None) -> dict[str, str]:
    """The environment for another instance of the app (the engine the tray starts, the selftest's
    proxy): as for a program outside the bundle and, when frozen, with its bootloader told to start afresh."""
    frozen = is_frozen() if frozen is None else frozen
    environment = outside_environment(inherited, frozen=frozen)
    return {**environment, RESET_ENVIRONMENT: "1"} if frozen else environment
