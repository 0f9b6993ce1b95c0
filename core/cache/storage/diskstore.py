"""The embedded store: a ``diskcache.Cache`` in a directory, bounded in bytes with LRU eviction.

Entries are stored as encoded blobs (:mod:`core.cache.entry`) tagged with their model, so clearing one model
is one indexed delete. A database that cannot be opened is moved aside (``<dir>.corrupt-<time>``) and a
fresh one created, as the spec asks.

A hit costs a read only. diskcache's own LRU policy writes the access time on every ``get`` (a SQLite
transaction, ~140 us here, against ~12 us for a plain read), so the cache runs diskcache's
"least-recently-stored" policy, and :meth:`DiskStore.flush` moves the store time of the entries hit
since the last flush to the time of their last hit, in one transaction. Eviction then goes by last use,
to within one flush interval. Hit counts are kept the same way, in a small SQLite table beside it
(:mod:`core.cache.storage.hitcounts`).

The store reads the clock it is given (wall-clock seconds): an entry is served until its own
``expires``, and its store time (which orders eviction) is that clock's. diskcache's own expiry is set as
well, so expired entries are culled from disk. A few queries read diskcache's ``Cache`` table directly
(``key``, ``raw``, ``store_time``, ``expire_time``, ``tag``) through ``Cache._sql``, for which diskcache has
no public API; the version is pinned in pyproject.toml and tests/test_store.py checks those parts.

SQLite's memory is bounded when the store is opened: ``sqlite_cache`` bytes of SQLite's heap for the whole
process (its soft heap limit: beyond it SQLite reuses cached pages instead of allocating, so a connection
per thread does not multiply the bound; each connection's page cache is a quarter of it), and
``sqlite_mmap`` bytes of the file mapped per connection (0: none; mapped pages count in the process's RSS,
and diskcache maps 64 MiB per connection by default). Reads then go through the OS's page cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import diskcache

from core.cache.entry import CorruptEntry, Entry
from core.cache.storage.hitcounts import HitCounts
from core.cache.storage.store import StoreError

log = logging.getLogger(__name__)
PAGE = 500  # keys read at a time by DiskStore.entries
SQLITE_CACHE = 2 * 2**20  # bytes of SQLite page cache for the process (the default of cache.sqlite_cache)
SQLITE_MMAP = 0  # bytes of the database file mapped per connection (the default of cache.sqlite_mmap)
PAGE_BYTES = 4096  # SQLite's page size for diskcache's databases (the default page size)
HITS_FILE = "hits.sqlite3"  # the entries' hit counts (core.cache.storage.hitcounts)
OLD_META_DIR = "meta"  # where earlier versions kept them, in a diskcache of their own


class DiskStore:
    """A :class:`core.cache.storage.store.Store` on ``diskcache``.

    ``directory`` is created with mode 0700. ``size_limit`` is in bytes; beyond it the least recently
    used entries are evicted when new ones are written. diskcache is safe to share between threads
    and processes, so a running proxy and ``ollacache clear`` can open the same directory.
    """

    def __init__(
        self,
        directory: Path,
        size_limit: int,
        clock: Callable[[], float] = time.time,
        *,
        sqlite_cache: int = SQLITE_CACHE,
        sqlite_mmap: int = SQLITE_MMAP,
    ) -> None:
        self.clock = clock
        self._sqlite = {  # diskcache sets each as a PRAGMA on every connection it opens
            # pages per connection: a quarter of the budget, so the connection of the thread that reads hits
            # keeps its pages while the few others (writer, flushes) take theirs; the OS's page cache holds the rest
            "sqlite_cache_size": max(1, sqlite_cache // 4 // PAGE_BYTES),
            "sqlite_soft_heap_limit": max(1, sqlite_cache),  # bytes of SQLite's heap, for the whole process
            "sqlite_mmap_size": sqlite_mmap,
        }
        self.directory = Path(directory)
        self.location = str(self.directory)
        self.size_limit = size_limit
        self._hits: dict[str, tuple[int, float]] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._cache, self._counts = self._open()
            except sqlite3.DatabaseError as error:
                if isinstance(error, sqlite3.OperationalError):
                    raise  # locked or read-only: a healthy database that cannot be used right now
                log.error("cache database at %s is damaged (%s); moving it aside", self.directory, error)
                self.directory.rename(self.directory.with_name(f"{self.directory.name}.corrupt-{int(time.time())}"))
                self.directory.mkdir(parents=True, mode=0o700)
                self._cache, self._counts = self._open()
        except (OSError, sqlite3.Error, diskcache.Timeout) as error:
            raise StoreError(f"cannot open the cache at {self.directory}: {error}") from error

    def _open(self) -> tuple[diskcache.Cache, HitCounts]:
        cache = diskcache.Cache(
            str(self.directory),
            size_limit=self.size_limit,
            eviction_policy="least-recently-stored",
            tag_index=True,
            **self._sqlite,
        )
        counts = HitCounts(self.directory / HITS_FILE, self._sqlite["sqlite_cache_size"] * PAGE_BYTES)
        _take_old_counts(self.directory / OLD_META_DIR, counts)
        os.chmod(self.directory, 0o700)
        return cache, counts

    def get(self, key: str) -> Entry | None:
        blob = self._cache.get(key)
        if blob is None:
            return None
        try:
            entry = Entry.decode(blob)
        except CorruptEntry as error:
            log.warning("dropping unreadable entry %s: %s", key, error)
            self._cache.delete(key)
            return None
        return entry if entry.live(self.clock()) else None  # a read never writes: diskcache culls it later

    def put(self, entry: Entry) -> None:
        now = self.clock()
        if not entry.live(now):
            return
        with self._cache.transact():
            self._cache.set(
                entry.key, entry.encode(), expire=entry.expires - now if entry.expires else None, tag=entry.model
            )
            # store_time orders eviction under the least-recently-stored policy: the store's clock, not diskcache's
            self._cache._sql("UPDATE Cache SET store_time = ? WHERE key = ? AND raw = 1", (now, entry.key))

    def put_many(self, entries: list[Entry]) -> None:
        """Store several entries in one transaction (one commit): all of them, or none on an error."""
        with self._cache.transact():
            for entry in entries:
                self.put(entry)

    def delete(self, key: str) -> bool:
        self._hits.pop(key, None)
        self._counts.delete([key])
        return bool(self._cache.delete(key))

    def clear(self, model: str | None = None) -> int:
        self._hits.clear()
        if model is None:
            self._counts.clear()
            return self._cache.clear()
        keys = [key for (key,) in self._cache._sql("SELECT key FROM Cache WHERE tag = ?", (model,)).fetchall()]
        removed = self._cache.evict(model)
        self._counts.delete(keys)
        return removed

    def recent(self, limit: int = 100, model: str | None = None) -> list[dict[str, object]]:
        """Entries by last use (stored or hit), most recent first."""
        # diskcache has no public "newest first" query; its table is documented in its source
        # (Cache.__init__) and read here directly instead of decoding every entry in the store.
        query = "SELECT key FROM Cache WHERE (expire_time IS NULL OR expire_time > ?)"
        args: list[object] = [time.time()]  # diskcache's own expiry runs on the real clock
        if model is not None:
            query += " AND tag = ?"
            args.append(model)
        query += " ORDER BY store_time DESC LIMIT ?"
        args.append(limit)
        rows = self._cache._sql(query, args).fetchall()
        infos = []
        for (key,) in rows:
            entry = self.get(key)
            if entry is None:
                continue
            info = entry.info()
            hits, last_hit = self._hit_record(key)
            info.update(hits=hits, last_hit=last_hit)
            infos.append(info)
        return infos

    def entries(self, model: str | None = None) -> Iterator[Entry]:
        """Every live entry (or one model's, by the tag index), :data:`PAGE` keys at a time in rowid order,
        so the walk holds one page of keys and one entry at a time. An entry removed meanwhile is skipped."""
        query = "SELECT rowid, key FROM Cache WHERE rowid > ? AND raw = 1"
        if model is not None:
            query += " AND tag = ?"
        query += " ORDER BY rowid LIMIT ?"
        after = 0
        while True:
            args: list[object] = [after, *([model] if model is not None else []), PAGE]
            rows = self._cache._sql(query, args).fetchall()
            if not rows:
                return
            for rowid, key in rows:
                after = rowid
                entry = self.get(key)
                if entry is not None:
                    yield entry

    def _hit_record(self, key: str) -> tuple[int, float | None]:
        stored = self._counts.get(key)
        pending = self._hits.get(key, (0, None))
        return stored[0] + pending[0], pending[1] or stored[1]

    def note_hit(self, key: str, when: float) -> None:
        count, _ = self._hits.get(key, (0, when))
        self._hits[key] = (count + 1, when)

    def flush(self) -> None:
        pending, self._hits = self._hits, {}
        if not pending:
            return
        live, gone = [], []
        with self._cache.transact():
            for key, (count, last) in pending.items():
                # store_time orders eviction under the least-recently-stored policy (see module doc)
                moved = self._cache._sql("UPDATE Cache SET store_time = ? WHERE key = ? AND raw = 1", (last, key))
                (live if moved.rowcount else gone).append((key, count, last))
        self._counts.add(live)
        self._counts.delete(key for key, _, _ in gone)  # evicted or expired since: its count goes with it

    def count(self) -> int:
        return len(self._cache)

    def count_by_model(self) -> dict[str, int]:
        """One query over the tag index (the model), not a walk of the entries."""
        rows = self._cache._sql(
            "SELECT tag, COUNT(*) FROM Cache WHERE raw = 1 AND (expire_time IS NULL OR expire_time > ?) GROUP BY tag",
            (time.time(),),
        ).fetchall()
        return {str(tag): int(count) for tag, count in rows if tag is not None}

    def volume(self) -> int:
        return self._cache.volume()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._cache.close()
            self._counts.close()


def _take_old_counts(directory: Path, counts: HitCounts) -> None:
    """Move the hit counts an earlier version kept in a diskcache of their own into ``counts``, once."""
    if not (directory / "cache.db").exists():
        return
    with diskcache.Cache(str(directory), eviction_policy="none") as old:
        counts.add((key, count, last or 0.0) for key in old for count, last in [old[key]])
    shutil.rmtree(directory)
