"""The cache as the proxy uses it: the memory tier in front of the store, writes off the event loop, and
clears that are never undone.

A lookup tries the memory tier, then the store (promoting what it finds). A new entry goes into the
memory tier at once and to the store in batches by one writer thread (:mod:`core.cache.storage.writer`), so a
hit never waits on a write. A clear or a
delete bumps the *generation* under the write lock; an answer to a request that began before it is then
neither stored nor kept in memory. Any store failure turns the cache into a pass-through that says why
(:attr:`LayeredCache.error`, shown on ``/-/health``) instead of failing requests; ``on_error`` hears of
each failure and of the recovery (from whichever thread saw it), so the engine can tell its subscribers.
Deleting a key deletes the other answers of its bucket too (``key~1``, ``key~2``...: ``cache.bucket``).
Hit counts wait in the store for its next flush; once they may hold ``hits_bytes`` of memory (counted per
hit, an upper bound on the distinct keys among them), ``on_hits_full`` asks for a flush at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.cache.entry import Entry
from core.cache.request.keys import slot_key
from core.cache.sizes import HIT_RECORD
from core.cache.storage.hot import HotTier
from core.cache.storage.store import Store
from core.cache.storage.writer import Writer
from core.config.specs_cache import BUCKET_MAX

log = logging.getLogger(__name__)
HITS_BYTES = 2**20  # memory for hit counts waiting for a flush (the default of cache.hits_limit)


class LayeredCache:
    """``hot`` in front of ``store``; ``error`` is the store's failure if it could not open, else ``None``."""

    def __init__(
        self,
        store: Store,
        hot: HotTier,
        error: str | None = None,
        on_error: Callable[[str | None], None] | None = None,
        hits_bytes: int = HITS_BYTES,
    ) -> None:
        self.store = store
        self.hot = hot
        self.error = error
        self.on_error = on_error  # the new error, or None when the store works again
        self.generation = 0
        self._lock = threading.Lock()
        self._writer: Writer[tuple[Entry, int]] = Writer(self._write)
        # entries kept but not written yet, so they answer hits even when the memory tier cannot hold them
        self._unwritten: dict[str, tuple[Entry, int]] = {}
        self.hits_bytes = hits_bytes
        self.on_hits_full: Callable[[], None] | None = None  # once per flush, when the hit counts reach the bound
        self._pending_hits = 0  # hits noted since the last flush began
        self._asked = False  # on_hits_full was called since then

    def lookup(self, key: str, now: float) -> Entry | None:
        """The live entry for ``key`` at ``now`` (wall-clock seconds), or ``None``."""
        entry = self.hot.get(key, now)
        if entry is not None:
            return entry
        unwritten = self._unwritten.get(key)
        if unwritten is not None and unwritten[1] == self.generation and unwritten[0].live(now):
            return unwritten[0]
        try:
            entry = self.store.get(key)
        except Exception as error:  # noqa: BLE001 - any store failure degrades to pass-through
            self.failed(error)
            return None
        if entry is not None:
            self.hot.put(entry)
        return entry

    def note_hit(self, key: str, when: float) -> None:
        self.store.note_hit(key, when)
        self._pending_hits += 1
        if not self._asked and self._pending_hits * HIT_RECORD > self.hits_bytes and self.on_hits_full is not None:
            self._asked = True
            self.on_hits_full()

    def flush(self) -> None:
        """Write the hit counts gathered to the store (blocking: call it off the loop). New entries are written
        first: a hit on an entry still on its way to the store would otherwise find no entry to count for."""
        self._pending_hits, self._asked = 0, False
        self._writer.wait_idle()
        self.store.flush()

    def keep(self, entry: Entry, generation: int) -> bool:
        """Keep a new entry (on the event loop), unless a clear came since ``generation``; whether it was kept."""
        if generation != self.generation:
            return False
        self.hot.put(entry)
        kept = (entry, generation)
        if self.hot.max_bytes:  # with the memory tier off (nothing may be kept) only the store answers
            self._unwritten[entry.key] = kept
        self._writer.submit(kept)
        return True

    def _write(self, batch: list[tuple[Entry, int]]) -> None:
        """Write a batch of new entries (in the writer's thread), leaving out those a clear came after."""
        try:
            with self._lock:
                entries = [entry for entry, generation in batch if generation == self.generation]
                if not entries:
                    return
                self.store.put_many(entries)
            self._set_error(None)
        except Exception as error:  # noqa: BLE001 - a store failure must not fail the request
            self.failed(error)
        finally:
            for done in batch:  # written (or lost with the store): the store answers for them from now on
                if self._unwritten.get(done[0].key) is done:
                    self._unwritten.pop(done[0].key, None)

    def failed(self, error: BaseException, *, keep_first: bool = False) -> None:
        """Serve as a pass-through and report ``error`` on health (the first one, with ``keep_first``)."""
        if keep_first and self.error is not None:
            return
        self._set_error(f"{type(error).__name__}: {error}")
        log.error("cache store at %s failed, serving as a pass-through: %s", self.store.location, error)

    def recovered(self) -> None:
        """The store works again (a lost Redis answers): cache as before, and tell ``on_error``."""
        self._set_error(None)

    def _set_error(self, error: str | None) -> None:
        changed, self.error = error != self.error, error
        if changed and self.on_error is not None:
            self.on_error(error)

    def remove(self, key: str | None = None, model: str | None = None) -> int:
        """Delete one entry (with the other answers of its bucket), one model's or all from the store (blocking:
        call it off the loop).

        Answers still on their way are not stored afterwards (see the module's note on generations);
        call :meth:`forget` on the event loop afterwards for the memory tier. Entries already kept are
        written first, so what is removed (and counted) is every answer stored before the call.
        """
        self._writer.wait_idle()
        with self._lock:
            self.generation += 1
            if key is not None:
                return sum(self.store.delete(slot) for slot in bucket_keys(key))
            return self.store.clear(model)

    def forget(self, key: str | None = None, model: str | None = None) -> None:
        """Drop entries from the memory tier after a delete or clear (on the event loop)."""
        if key is not None:
            for slot in bucket_keys(key):
                self.hot.discard(slot)
                self._unwritten.pop(slot, None)
        else:
            self.hot.clear(model)
            for gone in [k for k, (entry, _) in list(self._unwritten.items()) if model is None or entry.model == model]:
                self._unwritten.pop(gone, None)

    async def drain(self) -> None:
        """Wait for every store write under way (used at shutdown)."""
        await self._writer.drain()


def bucket_keys(key: str) -> list[str]:
    """``key`` and the keys of every other answer its bucket may hold (``cache.bucket``, whatever it was set
    to when they were stored); a slot's own key (``key~2``) is only itself."""
    if "~" in key:
        return [key]
    return [slot_key(key, index) for index in range(BUCKET_MAX)]
