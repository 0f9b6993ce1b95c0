"""Writing a setting into ``config.toml``, keeping the user's comments and layout (tomlkit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomlkit


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
    temporary = path.with_suffix(".toml.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(tomlkit.dumps(document))
    os.replace(temporary, path)
    return path
