"""The engine's housekeeping: totals saved and hit counts written every few seconds (and at once when the
counts gathered reach ``cache.hits_limit``), a shared store pinged so its loss and its return are seen, and when
each API key was last used written down.

Each failure is reported (the cache then serves as a pass-through and says why on ``/-/health``) and tried
again next time; nothing here fails a request.
"""

from __future__ import annotations

import asyncio
import logging

from core.access.keyring import KeyRing
from core.cache.storage.layered import LayeredCache
from core.cache.storage.store import SharedStore, Store, StoreError
from core.observe.stats import Stats

HOUSEKEEPING_S = 5.0

log = logging.getLogger(__name__)


class Housekeeping:
    """Saving ``stats`` and flushing ``cache``'s hit counts into ``store``, in tasks of the running loop."""

    def __init__(self, cache: LayeredCache, store: Store, stats: Stats, keyring: KeyRing | None = None) -> None:
        self.cache = cache
        self.store = store
        self.stats = stats
        self.keyring = keyring  # when each API key was last used is written here, in batches
        self._stopping = asyncio.Event()
        self._hits_full = asyncio.Event()  # the hit counts gathered reached cache.hits_limit: flush them now
        self._flushing = asyncio.Lock()  # one flush of hit counts at a time
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stopping.clear()
        self.cache.on_hits_full = self._hits_full.set  # called on the loop, by the proxy's hits
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every_few_seconds()), loop.create_task(self._when_full())]

    async def stop(self) -> None:
        """End the tasks, then save the totals and the hit counts a last time (blocking: shutting down)."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            self.stats.save()
            self.cache.flush()
        except Exception as error:  # noqa: BLE001 - shutting down: report, never hang
            log.error("could not save totals or hit counts: %s", error)

    async def _every_few_seconds(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), HOUSEKEEPING_S)
                return
            except TimeoutError:
                pass
            try:
                await self.stats.save_async()
            except Exception as error:  # noqa: BLE001 - keep house next time; say what is wrong meanwhile
                log.error("could not save totals: %s", error)
                self.cache.failed(error)
            await self.flush_hits()
            if self.keyring is not None:
                try:
                    await asyncio.to_thread(self.keyring.flush)
                except OSError as error:
                    log.error("could not note when the API keys were last used: %s", error)

    async def _when_full(self) -> None:
        """Write the hit counts as soon as they reach ``cache.hits_limit``, between the regular flushes."""
        while True:
            await self._hits_full.wait()
            self._hits_full.clear()
            await self.flush_hits()

    async def flush_hits(self) -> None:
        async with self._flushing:
            try:
                await asyncio.to_thread(self.cache.flush)
            except Exception as error:  # noqa: BLE001 - flush next time; say what is wrong meanwhile
                log.error("could not save hit counts: %s", error)
                self.cache.failed(error)
            await self._probe_store()

    async def _probe_store(self) -> None:
        """Ping a shared store: its loss is then reported even while every request is answered from memory,
        and the cache serves from it again once it answers (a disk store recovers with its next write)."""
        if not isinstance(self.store, SharedStore):
            return
        try:
            answers_again = await asyncio.to_thread(self.store.ping)
        except StoreError as error:
            self.cache.failed(error, keep_first=True)
            return
        if answers_again and self.cache.error is not None:  # another failure (Redis out of memory) stays
            self.cache.recovered()
