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
    palette = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                         (QPalette.ColorRole.Base, "#2b2c2f"), (QPalette.ColorRole.Text, "#e8eaed")):
        palette.setColor(role, QColor(colour))
    return palette
