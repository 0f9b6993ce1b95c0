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

INSTALL_HINTS = {
    "linux": "install Ollama with `curl -fsSL https://ollama.com/install.sh | sh`, or set ollama.binary",
    "darwin": "install Ollama from https://ollama.com/download (or `brew install ollama`), or set ollama.binary",
    "win32": "install Ollama from https://ollama.com/download, or set ollama.binary",
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
        return ["/Applications/Ollama.app/Contents/Resources/ollama",
                str(PurePosixPath(home, "Applications/Ollama.app/Contents/Resources/ollama")),
                "/opt/homebrew/bin/ollama", "/usr/local/bin/ollama"]
    return ["/usr/local/bin/ollama", "/usr/bin/ollama", str(PurePosixPath(home, ".local/bin/ollama"))]


def find_ollama(configured: str | None, *, platform: str = sys.platform, env: Mapping[str, str] | None = None,
                home: str | None = None, which: Callable[[str], str | None] = shutil.which,
                is_file: Callable[[str], bool] = os.path.isfile) -> Found | None:
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


def install_hint(platform: str = sys.platform) -> str:
    key = "linux" if platform.startswith("linux") else platform
    return INSTALL_HINTS.get(key, INSTALL_HINTS["linux"])
