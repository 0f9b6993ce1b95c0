"""The platform icon files the spec names, made from the renders in ``resources/icons`` at build time.

Windows gets ``ollacache.ico`` (written by Qt's ICO image plugin from the 256 px render); macOS gets
``ollacache.icns`` (``iconutil`` over an iconset of the renders); Linux needs none (the .deb ships the PNGs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

STATE = "serving"  # the icon of a working app: the one shown in menus and installers
SIZES = (16, 32, 64, 128, 256)


def write_platform_icons(source: Path, target: Path) -> None:
    """Write this platform's icon file into ``target`` (nothing on Linux)."""
    target.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        from PySide6.QtGui import QImage

        image = QImage(str(source / f"{STATE}-256.png"))
        if not image.save(str(target / "ollacache.ico"), "ICO"):
            raise RuntimeError("Qt could not write ollacache.ico")
    elif sys.platform == "darwin":
        iconset = target / "ollacache.iconset"
        shutil.rmtree(iconset, ignore_errors=True)
        iconset.mkdir()
        for size in SIZES[:-1]:
            shutil.copy(source / f"{STATE}-{size}.png", iconset / f"icon_{size}x{size}.png")
            shutil.copy(source / f"{STATE}-{size * 2}.png", iconset / f"icon_{size}x{size}@2x.png")
        shutil.copy(source / f"{STATE}-256.png", iconset / "icon_256x256.png")
        subprocess.run(["iconutil", "-c", "icns", str(iconset), "-o", str(target / "ollacache.icns")], check=True)
