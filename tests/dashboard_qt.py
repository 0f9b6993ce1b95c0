"""Qt for the dashboard tests: the offscreen platform (set before any QApplication exists), a window whose
QSettings live in the test's own file, and a dark palette to check that colours follow the scheme."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402 - after the platform is chosen

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402

from desktop.dashboard import DashboardWindow  # noqa: E402


def settings_in(path: Path) -> QSettings:
    return QSettings(str(path / "dashboard.ini"), QSettings.Format.IniFormat)


def window_in(path: Path) -> DashboardWindow:
    return DashboardWindow(settings=settings_in(path))


def dark_palette() -> QPalette:
    """A whole dark palette, every role derived from a dark button and window colour, as a dark scheme gives."""
    palette = QPalette(QColor("#3c3d40"), QColor("#202124"))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor("#9aa0a6"))
    return palette
