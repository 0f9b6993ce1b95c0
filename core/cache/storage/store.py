"""The ``Store`` protocol: what the proxy needs from a place that keeps entries.

Implementations: :class:`core.cache.storage.diskstore.DiskStore` (embedded, the default) and
:class:`core.cache.storage.redisstore.RedisStore` (shared between machines, ``cache.store = redis://...``). Calls are
blocking; the proxy runs writes off the event loop.
Any method may raise :class:`StoreError` (or an ``OSError``); the proxy then serves as a plain pass-through and
reports the failure on ``/-/health`` instead of failing requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from core.cache.entry import Entry


class StoreError(RuntimeError):
    """The store cannot do what was asked (disk full, permissions, a damaged database)."""


class Store(Protocol):
    """A key-value home for entries, bounded in bytes, with a time to live per entry."""

    location: str

    def get(self, key: str) -> Entry | None:
        """The live entry for ``key``, or ``None`` when absent, expired (by the store's clock) or unreadable."""

    def put(self, entry: Entry) -> None:
        """Store ``entry`` under ``entry.key``, replacing any, until ``entry.expires`` (0: no expiry)."""

    def put_many(self, entries: list[Entry]) -> None:
        """:meth:`put` each of ``entries``, at once where the backend can (one transaction)."""

    def delete(self, key: str) -> bool:
        """Remove one entry; ``True`` if it existed."""

    def clear(self, model: str | None = None) -> int:
        """Remove every entry, or those of one (normalised) model; returns how many."""

    def recent(self, limit: int = 100, model: str | None = None) -> list[dict[str, object]]:
        """Metadata of the newest entries, newest first (see :meth:`Entry.info`)."""

    def entries(self, model: str | None = None) -> Iterator[Entry]:
        """Every live entry, or those of one (normalised) model, in no set order, read lazily: a store of
        a million entries is walked a page at a time, never loaded at once."""

    def note_hit(self, key: str, when: float) -> None:
        """Count a hit in memory; :meth:`flush` persists counts, so a hit costs no write."""

    def flush(self) -> None:
        """Persist counts gathered by :meth:`note_hit`."""

    def count(self) -> int:
        """Number of entries."""

    def count_by_model(self) -> dict[str, int]:
        """Live entries per (normalised) model: for a models view, asked on demand, not per request."""

    def volume(self) -> int:
        """Bytes the store occupies."""

    def close(self) -> None:
        """Flush and release files or connections."""


@runtime_checkable
class SharedStore(Protocol):
    """A store other proxies use too (Redis): it can be lost and found again, and it tells of their removals."""

    def ping(self) -> bool:
        """Whether it answers again after being lost; raises :class:`StoreError` while it does not."""

    def listen(self, removed: Callable[[str | None, str | None], None]) -> None:
        """Call ``removed(key, model)`` (from another thread) for each delete or clear made by another proxy."""


class NullStore:
    """A store that keeps nothing: the proxy serves as a plain pass-through when the real one cannot open."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason

    def get(self, key: str) -> Entry | None:
        return None

    def put(self, entry: Entry) -> None:
        raise StoreError(self.reason)

    def put_many(self, entries: list[Entry]) -> None:
        raise StoreError(self.reason)

    def delete(self, key: str) -> bool:
        return False

    def clear(self, model: str | None = None) -> int:
        return 0

    def recent(self, limit: int = 100, model: str | None = None) -> list[dict[str, object]]:
        return []

    def entries(self, model: str | None = None) -> Iterator[Entry]:
        return iter(())

    def note_hit(self, key: str, when: float) -> None:
        pass

    def flush(self) -> None:
        pass

    def count(self) -> int:
        return 0

    def count_by_model(self) -> dict[str, int]:
        return {}

    def volume(self) -> int:
        return 0

    def close(self) -> None:
        pass
