"""The log of the Ollama that Ollacache runs: its output written to a file rotated at :data:`LOG_BYTES`, and the
last lines of it (and of its rotated files) read back for the dashboard and ``/-/ollama/log``."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

LOG_BYTES = 10 * 2**20  # one Ollama log file, before it is rotated
LOG_BACKUPS = 3


def open_log(path: Path) -> logging.Logger:
    """A logger writing Ollama's output to ``path``, rotated at :data:`LOG_BYTES`; raises OSError if unwritable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"ollacache.ollama.{path}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def tail(path: Path, count: int, block: int = 64 * 1024) -> list[str]:
    """The last ``count`` lines of the log at ``path`` and, before them, of its rotated files
    (``path.1``, ``path.2``...), read backwards a block at a time; missing files have no lines."""
    lines: list[str] = []
    for n in range(LOG_BACKUPS + 1):
        if len(lines) >= count:
            break
        try:
            with open(path if n == 0 else path.with_name(f"{path.name}.{n}"), "rb") as file:
                end = file.seek(0, os.SEEK_END)
                data = b""
                while end > 0 and data.count(b"\n") <= count - len(lines):
                    start = max(0, end - block)
                    file.seek(start)
                    data = file.read(end - start) + data
                    end = start
        except FileNotFoundError:
            break
        found = data.decode("utf-8", "replace").splitlines()
        lines = found[max(0, len(found) - (count - len(lines))) :] + lines
    return lines
