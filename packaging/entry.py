"""The frozen executable's script (PyInstaller's entry point): the ``ollacache`` command and the tray app.

With no arguments (or ``--hidden`` alone, as start at login runs it) it starts the tray app where a display
exists, as ``ollacache tray`` does, and without one serves headless; with any other arguments it is the
``ollacache`` command (``serve``, ``selftest``, ``--version``...), which is also how the tray app starts its
engine (``ollacache serve``). ``multiprocessing.freeze_support()`` runs first, before anything else is
imported, so a frozen child of :mod:`multiprocessing` on Windows runs its task instead of the app.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence

TRAY_ARGUMENTS = ([], ["--hidden"])


def wants_tray(argv: Sequence[str]) -> bool:
    """Whether these arguments (without the program name) start the tray app rather than a command."""
    return list(argv) in TRAY_ARGUMENTS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tray app or one ``ollacache`` command; the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from core.cli.commands import has_display
    from core.cli.commands import main as command

    if wants_tray(argv) and has_display():
        from desktop.app import main as tray

        return tray(argv)
    return command(["tray", *argv] if wants_tray(argv) else argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
