"""The layered cache: the memory tier in front of the store, writes off the event loop, clears never undone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from core.cache.entry import Entry
from core.cache.storage.diskstore import DiskStore
from core.cache.storage.hot import HotTier
from core.cache.storage.layered import LayeredCache
from tests.harness import wait_for


def entry(key: str = "k") -> Entry:
    return Entry(key, "/api/chat", "m:latest", False, "application/json", [b'{"done":true}'])


def test_a_kept_entry_is_found_in_memory_then_on_disk_after_a_restart(tmp_path: Path) -> None:
    async def keep() -> None:
        cache = LayeredCache(DiskStore(tmp_path / "c", 10**8), HotTier(2**20))
        assert cache.keep(entry(), cache.generation)
        assert cache.lookup("k", now=1.0) == entry()  # at once, from memory
        await cache.drain()
        cache.store.close()

    asyncio.run(keep())
    again = LayeredCache(DiskStore(tmp_path / "c", 10**8), HotTier(2**20))
    assert again.lookup("k", now=1.0) == entry()  # from the store, then promoted to memory
    assert len(again.hot) == 1
    again.store.close()


def test_an_answer_begun_before_a_clear_is_not_kept(tmp_path: Path) -> None:
    async def race() -> None:
        cache = LayeredCache(DiskStore(tmp_path / "c", 10**8), HotTier(2**20))
        began = cache.generation
        cache.remove()  # a clear arrives while the answer is on its way
        assert not cache.keep(entry(), began)
        await cache.drain()
        assert cache.lookup("k", now=1.0) is None and cache.store.count() == 0
        cache.store.close()

    asyncio.run(race())


def test_a_failing_store_reads_as_a_miss_and_says_why(tmp_path: Path) -> None:
    class Broken(DiskStore):
        def get(self, key: str) -> Entry | None:
            raise OSError(28, "No space left on device")

    cache = LayeredCache(Broken(tmp_path / "c", 10**8), HotTier(2**20))
    assert cache.lookup("k", now=1.0) is None
    assert cache.error is not None and "No space left" in cache.error
    cache.failed(RuntimeError("later"), keep_first=True)
    assert "No space left" in cache.error
    cache.store.close()


def test_the_listener_hears_a_failure_once_and_the_recovery_once(tmp_path: Path) -> None:
    full = [True]

    class Filling(DiskStore):
        def put(self, entry: Entry) -> None:
            if full[0]:
                raise OSError(28, "No space left on device")
            super().put(entry)

    heard: list[str | None] = []

    async def write_three() -> None:
        cache = LayeredCache(Filling(tmp_path / "c", 10**8), HotTier(2**20), on_error=heard.append)
        for key in ("a", "b"):  # two failed writes: one failure told
            cache.keep(entry(key), cache.generation)
            await cache.drain()
        full[0] = False
        cache.keep(entry("c"), cache.generation)  # room again: the recovery told
        await cache.drain()
        assert cache.error is None and cache.store.count() == 1
        cache.store.close()

    asyncio.run(write_three())
    assert len(heard) == 2 and heard[0] is not None and "No space left" in heard[0] and heard[1] is None


def test_an_entry_too_big_for_the_memory_tier_answers_hits_before_it_is_written(tmp_path: Path) -> None:
    written = threading.Event()
    release = threading.Event()

    class SlowStore(DiskStore):
        def put_many(self, entries: list[Entry]) -> None:
            release.wait()  # the writer is still busy when the next request comes
            super().put_many(entries)
            written.set()

    cache = LayeredCache(SlowStore(tmp_path / "c", 10**8), HotTier(1024))  # too small for the entry
    entry = Entry("big", "/api/chat", "m:latest", False, "application/json", [b"x" * 4096])
    assert cache.keep(entry, cache.generation)
    assert cache.lookup("big", 0.0) is entry  # nowhere in memory but not written yet: still a hit
    cache.generation += 1  # a clear came (remove() would wait for the writer): the unwritten answer is not served
    assert cache.lookup("big", 0.0) is None
    cache.generation -= 1
    release.set()
    assert written.wait(10)
    wait_for(lambda: cache.lookup("big", 0.0) is not None and not cache._unwritten, "the entry to be written")
    cache.store.close()
