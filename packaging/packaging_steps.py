"""One build step as a subprocess: run it, and on failure raise :class:`BuildError` with its output, which
``build.py`` reports on one line (exit 1) rather than as a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path


class BuildError(Exception):
    """A build step or a smoke test failed; the message says which and why."""


def run(command: list[str | Path], *, echo: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run one step (printed first unless ``echo`` is false), raising :class:`BuildError` when it fails."""
    if echo:
        print("+", " ".join(str(part) for part in command), flush=True)
    done = subprocess.run(
        [str(part) for part in command],
        text=True,
        capture_output=True,  # type: ignore[call-overload]
        **kwargs,
    )
    if done.returncode != 0:
        raise BuildError(f"{command[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done
