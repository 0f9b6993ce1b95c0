"""Hit counts of the disk store's entries: one small SQLite table beside diskcache's database.

A hit writes nothing; the store gathers counts in memory and adds them here in batches
(:meth:`HitCounts.add`), one upsert per entry in one transaction: about 5 us an entry, against ~180 us for a
``diskcache.Cache.set`` of a pickled pair, which at a million entries made writing the counts of random hits
cost more CPU than serving them. The table is shared between processes by SQLite's own locking (a running
proxy and ``ollacache clear``), in write-ahead-log mode so a reader never waits for a writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS hits (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, last REAL NOT NULL
) WITHOUT ROWID"""
UPSERT = (
    "INSERT INTO hits (key, count, last) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count, last = max(last, excluded.last)"
)


class HitCounts:
    """``key -> (count, last hit)`` in the SQLite database at ``path``; ``cache_bytes`` bounds its page cache.

    One connection, used from any thread under a lock: each call is one short statement or transaction.
    Raises ``sqlite3.Error`` as the store's own database does; the store turns that into a pass-through.
    """

    def __init__(self, path: Path, cache_bytes: int) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(f"PRAGMA cache_size = {-max(1, cache_bytes // 1024)}")  # negative: KiB
        self._db.execute(SCHEMA)

    def get(self, key: str) -> tuple[int, float | None]:
        with self._lock:
            row = self._db.execute("SELECT count, last FROM hits WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else (0, None)

    def add(self, rows: Iterable[tuple[str, int, float]]) -> None:
        """Add each ``(key, hits, last hit)`` to what is counted, in one transaction."""
        rows = list(rows)
        if not rows:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(UPSERT, rows)

    def delete(self, keys: Iterable[str]) -> None:
        keys = [(key,) for key in keys]
        if keys:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM hits WHERE key = ?", keys)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM hits")

    def close(self) -> None:
        with self._lock:
            self._db.close()
