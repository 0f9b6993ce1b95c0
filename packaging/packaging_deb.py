"""The tree of the Linux ``.deb``: the build under /usr/lib/ollacache, the binary on PATH, the menu entry,
hicolor icons, copyright and changelog; ``dpkg-deb`` makes the package from it (``build.py``)."""

from __future__ import annotations

import gzip
import os
import shutil
from email.utils import formatdate
from pathlib import Path

from packaging_man import man_page

# The system libraries the frozen Qt's xcb platform loads that the build does not carry (the set .ci/run
# installs for the tests), plus the basics every desktop has.
DEB_DEPENDS = [
    "libc6 (>= 2.31)",
    "libdbus-1-3",
    "libfontconfig1",
    "libfreetype6",
    "libgl1",
    "libegl1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libx11-xcb1",
]
# Libraries the build carries that Debian ships as packages: the .deb leaves them out and depends on the package
# instead (the .tar.gz keeps them, so it runs anywhere)
SYSTEM_LIBRARIES = {
    "libbz2.so.1.0": "libbz2-1.0",
    "libexpat.so.1": "libexpat1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16t64 | libpng16-16",
    "libz.so.1": "zlib1g",
    "libblkid.so.1": "libblkid1",
    "libmount.so.1": "libmount1",
    "libX11-xcb.so.1": "libx11-xcb1",
}
# What lintian reports on a PyInstaller build that is so by design, each with the reason
LINTIAN_OVERRIDES = """\
# Python's extension modules take the C API and libc from libpython, which the frozen app's bootloader loads
ollacache: library-not-linked-against-libc [usr/lib/ollacache/_internal/python3*/lib-dynload/*]
ollacache: shared-library-lacks-prerequisites [usr/lib/ollacache/_internal/python3*/lib-dynload/*]
# CPython builds pyexpat with its own copy of expat
ollacache: embedded-library expat [usr/lib/ollacache/_internal/python3*/lib-dynload/pyexpat.*]
# PyInstaller's bootloader, as PyInstaller ships it, is linked without PIE
ollacache: hardening-no-pie [usr/lib/ollacache/ollacache]
"""
ICON_SIZES = (16, 22, 32, 48, 64, 128, 256)
MAINTAINER = "Ollacache maintainers <maintainers@ollacache.org>"


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ollacache
Source: https://github.com/ollacache/ollacache

Files: *
Copyright: 2026 Ollacache contributors
License: MIT

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
 documentation files (the "Software"), to deal in the Software without restriction, including without limitation
 the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and
 to permit persons to whom the Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or substantial portions of
 the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO
 THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
 CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
 IN THE SOFTWARE.
"""


def _tree_kib(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()) // 1024 + 1


def _write_gzip(path: Path, text: str) -> None:
    """``text`` gzipped at level 9 with no timestamp, as Debian's policy asks of docs and manual pages."""
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as out:
        out.write(text.encode())


def menu_files(project: Path) -> list[tuple[Path, str]]:
    """The menu entry (``resources/ollacache.desktop``) and the hicolor icons a desktop finds under ``share/``:
    each file's source in ``project`` and its path under ``share/``."""
    icons = project / "resources" / "icons"
    return [
        (project / "resources" / "ollacache.desktop", "applications/ollacache.desktop"),
        *((icons / f"serving-{size}.png", f"icons/hicolor/{size}x{size}/apps/ollacache.png") for size in ICON_SIZES),
        (icons / "serving.svg", "icons/hicolor/scalable/apps/ollacache.svg"),
    ]


def write_deb_tree(root: Path, folder: Path, project: Path, version: str) -> None:
    """Lay out the package's files and DEBIAN/control under ``root`` from the one-folder build ``folder``."""
    shutil.copytree(folder, root / "usr/lib/ollacache", symlinks=True)
    depends = [*DEB_DEPENDS]
    for name, package in SYSTEM_LIBRARIES.items():
        bundled = root / "usr/lib/ollacache/_internal" / name
        if bundled.exists():
            bundled.unlink()
            depends += [package] if package not in depends else []
    for path in (root / "usr/lib/ollacache").rglob("*"):
        if path.is_file() and not path.is_symlink():
            is_library = path.suffix == ".so" or ".so." in path.name
            path.chmod(0o755 if os.access(path, os.X_OK) and not is_library else 0o644)
    bin_dir = root / "usr/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ollacache").symlink_to("../lib/ollacache/ollacache")
    for source, path in menu_files(project):
        (root / "usr/share" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "usr/share" / path)
    doc = root / "usr/share/doc/ollacache"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    overrides = root / "usr/share/lintian/overrides"
    overrides.mkdir(parents=True)
    (overrides / "ollacache").write_text(LINTIAN_OVERRIDES)
    man = root / "usr/share/man/man1"
    man.mkdir(parents=True)
    _write_gzip(man / "ollacache.1.gz", man_page(version))
    changelog = (
        f"ollacache ({version}) unstable; urgency=medium\n\n  * Release {version}.\n\n"
        f" -- {MAINTAINER}  {formatdate(usegmt=False, localtime=False)}\n"
    )
    _write_gzip(doc / "changelog.gz", changelog)
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink() and "usr/lib/ollacache" not in str(path):
            path.chmod(0o644)
    control = root / "DEBIAN"
    control.mkdir()
    (control / "control").write_text(
        f"Package: ollacache\nVersion: {version}\nSection: utils\nPriority: optional\nArchitecture: amd64\n"
        f"Maintainer: {MAINTAINER}\nInstalled-Size: {_tree_kib(root)}\nDepends: {', '.join(depends)}\n"
        "Homepage: https://github.com/ollacache/ollacache\n"
        "Description: caching proxy and tray app for local Ollama\n"
        " Ollacache answers repeated Ollama and OpenAI-compatible requests\n"
        " (chat, generate, embeddings) from disk in under a millisecond. The\n"
        " tray app shows the hit rate and what was saved, and supervises Ollama.\n"
    )
