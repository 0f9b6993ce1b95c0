"""Render the tray icon's SVG sources to PNG at every size the tray may ask for, and the app's icon for Windows and
macOS.

Run ``python -m desktop.render_icons`` after changing an SVG in ``resources/icons/``; it writes
``NAME-SIZE.png`` beside each ``NAME.svg`` (sizes: :data:`desktop.icons.SIZES`), and ``ollacache.ico`` and
``ollacache.icns`` from the 256 px render of the working app's icon (Qt's own ICO and ICNS writers), which the
Windows and macOS builds take.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from desktop.icons import ICON_DIR, SIZES, IconState

APP_ICON = IconState.SERVING  # the icon of a working app: the one shown in menus and installers
PLATFORM_ICONS = {"ollacache.ico": "ICO", "ollacache.icns": "ICNS"}  # file name: Qt's writer


def render(state: IconState, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(state.svg)).render(painter)
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication(sys.argv[:1])
    for state in IconState:
        for size in SIZES:
            if not render(state, size).save(str(state.png(size))):
                print(f"render_icons: could not write {state.png(size)}", file=sys.stderr)
                return 1
    for name, kind in PLATFORM_ICONS.items():
        if not render(APP_ICON, 256).save(str(ICON_DIR / name), kind):
            print(f"render_icons: could not write {ICON_DIR / name}", file=sys.stderr)
            return 1
    print(f"rendered {len(IconState)} icons at {len(SIZES)} sizes, and {', '.join(PLATFORM_ICONS)}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
