"""The frozen executable's script: ``multiprocessing.freeze_support()`` first, then the ``ollacache`` command.

With no arguments the frozen app starts the tray app (the face a user launching it from a menu expects);
with arguments it is the command line (``serve``, ``stats``, ``selftest``...).
"""

import multiprocessing
import sys


def run() -> int:
    """Run the ``ollacache`` command with this process's arguments; its exit code."""
    multiprocessing.freeze_support()
    from core.cli import main

    argv = sys.argv[1:]
    return main(argv if argv else ["tray"])


if __name__ == "__main__":
    raise SystemExit(run())
