"""Finding the ``ollama`` executable: the setting, then ``PATH``, then where installers put it.

Pure apart from the two callables it is given (``which`` and ``is_file``), so every platform's search
order is tested on any machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

# Plain sentences: they are shown as they are in the app, the CLI and /-/health
INSTALL_HINTS = {
    "linux": "Install it from https://ollama.com/download/linux (or run: curl -fsSL https://ollama.com/install.sh "
    "| sh), or choose the Ollama program in Settings.",
    "darwin": "Install it from https://ollama.com/download/mac (or run: brew install ollama), or choose the Ollama "
    "program in Settings.",
    "win32": "Install it from https://ollama.com/download/windows, or choose the Ollama program in Settings.",
}
DOWNLOAD_PAGES = {
    "linux": "https://ollama.com/download/linux",
    "darwin": "https://ollama.com/download/mac",
    "win32": "https://ollama.com/download/windows",
}


@dataclass(frozen=True)
class Found:
    """Where the binary is and how it was found (``setting``, ``PATH`` or ``standard location``)."""

    path: str
    source: str


def standard_locations(platform: str, env: Mapping[str, str], home: str) -> list[str]:
    """The places Ollama's installers (and Homebrew) put the binary, in search order."""
    if platform == "win32":
        local = env.get("LOCALAPPDATA") or str(PureWindowsPath(home, "AppData", "Local"))
        return [str(PureWindowsPath(local, "Programs", "Ollama", "ollama.exe"))]
    if platform == "darwin":
        return [
            "/Applications/Ollama.app/Contents/Resources/ollama",
            str(PurePosixPath(home, "Applications/Ollama.app/Contents/Resources/ollama")),
            "/opt/homebrew/bin/ollama",
            "/usr/local/bin/ollama",
        ]
    return ["/usr/local/bin/ollama", "/usr/bin/ollama", str(PurePosixPath(home, ".local/bin/ollama"))]


def find_ollama(
    configured: str | None,
    *,
    platform: str = sys.platform,
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    is_file: Callable[[str], bool] = os.path.isfile,
) -> Found | None:
    """The ``ollama`` binary to run, or ``None`` when there is none.

    A configured path that does not exist is not silently replaced by another binary: it yields
    ``None`` so the user learns that the setting is wrong.
    """
    if configured:
        return Found(configured, "setting") if is_file(configured) else None
    name = "ollama.exe" if platform == "win32" else "ollama"
    on_path = which(name)
    if on_path:
        return Found(on_path, "PATH")
    env = os.environ if env is None else env
    home = home if home is not None else os.path.expanduser("~")
    for candidate in standard_locations(platform, env, home):
        if is_file(candidate):
            return Found(candidate, "standard location")
    return None


def _platform_key(platform: str) -> str:
    key = "linux" if platform.startswith("linux") else platform
    return key if key in INSTALL_HINTS else "linux"


def install_hint(platform: str = sys.platform) -> str:
    """How to install Ollama here, in a sentence or two."""
    return INSTALL_HINTS[_platform_key(platform)]


def download_page(platform: str = sys.platform) -> str:
    """Ollama's download page for this platform (the app's link button)."""
    return DOWNLOAD_PAGES[_platform_key(platform)]
