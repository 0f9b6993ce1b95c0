"""Writing a setting into ``config.toml``, keeping the user's comments and layout (tomlkit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from core.config.private import write_private


def write_setting(config_dir: Path, name: str, value: Any) -> Path:
    """Set ``name`` (``section.key``) to ``value`` in ``config_dir/config.toml``; returns the file's path.

    The file and directory are created private to the user (0600/0700) and replaced atomically.
    """
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = (config_dir / "config.toml").resolve()  # a symlinked file (dotfiles) is updated where it lives
    document = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    section, key = name.split(".", 1)
    table = document.get(section)
    if table is None:
        table = tomlkit.table()
        document[section] = table
    table[key] = value
    write_private(path, tomlkit.dumps(document))
    return path
