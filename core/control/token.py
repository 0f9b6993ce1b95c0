"""The per-install control token: a random secret that state-changing control calls must present.

It lives in the config directory as ``token`` (file mode 0600, directory 0700). The desktop app and
the CLI read it from there and send it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from core.config.private import write_private

TOKEN_FILE = "token"


def load_or_create(config_dir: Path) -> str:
    """Read the token, creating the directory and a new token the first time."""
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def read(config_dir: Path) -> str | None:
    """The token if it exists (for clients), else ``None``."""
    try:
        return (config_dir / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (constant-time comparison)."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())
