"""The platform icon file of this build, from the renders committed in ``resources/icons``.

Windows takes ``ollacache.ico``, macOS ``ollacache.icns``; Linux needs none (the .deb ships the PNGs).
``python -m desktop.render_icons`` writes both beside the SVG sources, so the build needs no image tools.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PLATFORM_ICON = {"win32": "ollacache.ico", "darwin": "ollacache.icns"}


def write_platform_icons(source: Path, target: Path, platform: str = sys.platform) -> None:
    """Put this platform's icon file from ``source`` into ``target`` (nothing on Linux)."""
    target.mkdir(parents=True, exist_ok=True)
    if (name := PLATFORM_ICON.get(platform)) is not None:
        shutil.copy(source / name, target / name)
