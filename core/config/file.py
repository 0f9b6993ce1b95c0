"""Writing settings into ``config.toml``, keeping the user's comments and layout (tomlkit)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from core.config.private import write_private


def write_setting(config_dir: Path, name: str, value: Any) -> Path:
    """Set ``name`` (``section.key``) to ``value`` in ``config_dir/config.toml``; returns the file's path.

    The file and directory are created private to the user (0600/0700) and replaced atomically.
    """
    return write_settings(config_dir, {name: value})


def write_settings(config_dir: Path, changes: Mapping[str, Any]) -> Path:
    """Set each ``section.key`` of ``changes`` to its value in ``config_dir/config.toml``, all in one atomic
    replacement of the file; a value of ``None`` removes the key (the setting goes back to its default).
    Returns the file's path.

    Comments, order and layout of the rest of the file are kept. The file and directory are created private
    to the user (0600/0700). Raises ``OSError`` when the file cannot be read or written, and
    ``tomlkit.exceptions.ParseError`` when it is not TOML; the file is unchanged then.
    """
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = (config_dir / "config.toml").resolve()  # a symlinked file (dotfiles) is updated where it lives
    document = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    for name, value in changes.items():
        section, key = name.split(".", 1)
        table = document.get(section)
        if value is None:
            if isinstance(table, (Table, dict)) and key in table:
                del table[key]
            continue
        if table is None:
            table = tomlkit.table()
            document[section] = table
        table[key] = list(value) if isinstance(value, tuple) else value
    write_private(path, tomlkit.dumps(document))
    return path
