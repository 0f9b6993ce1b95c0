"""The install's API keys: made with a name (a person or a device), shown once, kept only as SHA-256 hashes.

A key is 256 random bits, so a fast hash is as safe as a slow one and keeps the check on every request cheap.
The file (``api_keys.json`` in the config directory, private: 0600) holds each key's name, hash, creation time and
when it was last used. A running proxy reads it again when it changes, checked at most once a second, so a key
added or revoked from the command line or the app takes effect within seconds. When each key was last used is
kept in memory and written with the next :meth:`KeyRing.flush`, in batches, never on a request's path.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config.private import write_private

KEYS_FILE = "api_keys.json"
PREFIX = "oc-"  # tells an Ollacache key apart from the keys of other services at a glance
RELOAD_S = 1.0
NAME = re.compile(r"^[\w.@-]{1,64}$")


class KeyRefused(ValueError):
    """A key cannot be made or revoked as asked; the message says why in plain words."""


@dataclass
class KeyInfo:
    """What the file keeps of a key (never the key itself)."""

    name: str
    sha256: str
    created: float
    last_used: float = 0.0


def digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


class KeyRing:
    """The keys in ``config_dir``; reads the file again when it has changed."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / KEYS_FILE
        self._lock = threading.Lock()
        self._by_hash: dict[str, KeyInfo] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._used: dict[str, float] = {}
        # Keys sent and found, by the bytes sent: a key sent again costs a lookup instead of a hash. Only our
        # keys get in, so it holds at most one entry per key, and it is emptied whenever the file changes.
        self._seen: dict[bytes, KeyInfo] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._by_hash, self._stamp, self._seen = {}, None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            listed = json.loads(self.path.read_text())
            keys = [KeyInfo(**item) for item in listed.get("keys", [])]
        except (OSError, ValueError, TypeError, AttributeError):
            return  # a file half written or damaged: keep the keys read before
        self._by_hash, self._stamp, self._seen = {key.sha256: key for key in keys}, stamp, {}

    def name_of(self, secret: bytes, now: float | None = None) -> str | None:
        """The name of the key ``secret`` (as sent), or None when it is not one of ours; noted as used."""
        moment = time.monotonic() if now is None else now
        if moment - self._checked >= RELOAD_S:
            self._checked = moment
            self._reload()
        # A reload (from another thread) replaces the keys, then the keys seen: taken in the other order here, a
        # key found among the old keys is remembered only with them, never among the new ones.
        seen = self._seen
        found = seen.get(secret)
        if found is None:
            by_hash = self._by_hash
            if not by_hash or (found := by_hash.get(digest(secret))) is None:
                return None
            seen[secret] = found
        self._used[found.sha256] = time.time()
        return found.name

    def keys(self) -> list[KeyInfo]:
        """Every key, oldest first, with when it was last used (what is noted in memory included)."""
        with self._lock:
            self._reload()
            listed = sorted(self._by_hash.values(), key=lambda key: key.created)
            return [
                KeyInfo(k.name, k.sha256, k.created, max(k.last_used, self._used.get(k.sha256, 0.0))) for k in listed
            ]

    def add(self, name: str) -> str:
        """A new key named ``name``: returned once, kept only as its hash."""
        if not NAME.match(name):
            raise KeyRefused(f"{name!r} is not a key name: use 1 to 64 letters, digits, '.', '@', '_' or '-'")
        with self._lock:
            self._reload()
            if any(key.name == name for key in self._by_hash.values()):
                raise KeyRefused(f"a key named {name!r} exists; revoke it first or choose another name")
            secret = PREFIX + secrets.token_urlsafe(32)
            info = KeyInfo(name, digest(secret.encode()), time.time())
            self._write([*self._by_hash.values(), info])
            return secret

    def revoke(self, name: str) -> None:
        """Remove the key named ``name``; a running proxy refuses it within seconds."""
        with self._lock:
            self._reload()
            kept = [key for key in self._by_hash.values() if key.name != name]
            if len(kept) == len(self._by_hash):
                raise KeyRefused(f"no key is named {name!r}")
            self._write(kept)

    def flush(self) -> None:
        """Write when each key was last used, if any was used since the last flush."""
        with self._lock:
            if not self._used:
                return
            self._reload()
            used, self._used = self._used, {}
            for sha, when in used.items():
                if sha in self._by_hash:
                    self._by_hash[sha].last_used = max(self._by_hash[sha].last_used, when)
            self._write(list(self._by_hash.values()))

    def _write(self, keys: list[KeyInfo]) -> None:
        ordered = sorted(keys, key=lambda key: key.created)
        write_private(self.path, json.dumps({"keys": [asdict(key) for key in ordered]}, indent=1) + "\n")
        self._stamp = None
        self._reload()
