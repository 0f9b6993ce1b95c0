"""Where the running engine can be reached: ``serve`` writes its bound URL, client commands read it.

With port takeover, or ``--port 0``, the proxy is not where the settings say; ``ollacache stats``,
``clear``, ``doctor`` and ``tune --apply`` find it through this file (``running.json`` in the config
directory, removed on a clean exit). A file left by a killed engine is harmless: nothing answers there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.config.private import write_private

RUNTIME_FILE = "running.json"


def write_url(config_dir: Path, url: str) -> None:
    """Record ``url`` and this process's pid (file 0600, replaced atomically)."""
    write_private(config_dir / RUNTIME_FILE, json.dumps({"url": url, "pid": os.getpid()}))


def read_url(config_dir: Path) -> str | None:
    try:
        url = json.loads((config_dir / RUNTIME_FILE).read_text()).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) else None


def remove(config_dir: Path) -> None:
    """Forget the URL, if it is this process's."""
    path = config_dir / RUNTIME_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def engine_url(config_dir: Path, configured: str) -> str:
    """Where a running engine said it serves, else the configured address."""
    return read_url(config_dir) or configured
