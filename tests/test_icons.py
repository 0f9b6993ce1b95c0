"""The icons in ``resources/icons`` are the renders of their SVG sources: every PNG the tray shows, and the app's
icon for Windows (``.ico``) and macOS (``.icns``), which the builds take as they are (``python -m
desktop.render_icons`` writes them all)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

import tests.desktop_qt  # noqa: F401  (Qt offscreen, before any QApplication)
from desktop.icons import ICON_DIR, SIZES, IconState
from desktop.render_icons import APP_ICON, PLATFORM_ICONS, render

STRAIGHT = QImage.Format.Format_ARGB32  # as the files keep it: alpha not multiplied in


@pytest.mark.parametrize("state", list(IconState), ids=[state.value for state in IconState])
def test_each_png_is_the_render_of_its_svg_at_its_size(qapp: QApplication, state: IconState) -> None:
    for size in SIZES:
        stored = QImage(str(state.png(size)))
        assert stored.convertToFormat(STRAIGHT) == render(state, size).convertToFormat(STRAIGHT), state.png(size)


@pytest.mark.parametrize("name", list(PLATFORM_ICONS))
def test_the_windows_and_macos_icon_is_the_working_apps_icon(qapp: QApplication, name: str) -> None:
    stored = QImage(str(ICON_DIR / name))
    assert not stored.isNull() and stored.width() == stored.height() == 256
    assert stored.convertToFormat(STRAIGHT) == render(APP_ICON, 256).convertToFormat(STRAIGHT)
