"""Qt's own messages go to ``desktop.log`` in the log directory, not to the terminal.

Qt writes warnings about the platform to stderr (the offscreen platform has no tray and cannot raise a
window; a desktop without a tray says so); they are kept in the log for whoever debugs, and only
critical and fatal ones still reach stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

_path: Path | None = None


def _handle(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {kind.name}: {message}\n"
    if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
        sys.stderr.write(line)
    if _path is not None:
        try:
            with _path.open("a") as log:
                log.write(line)
        except OSError:
            pass


def install(log_dir: Path) -> None:
    global _path
    _path = log_dir / "desktop.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        _path = None
    qInstallMessageHandler(_handle)
