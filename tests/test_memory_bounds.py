"""Every in-memory structure that grows with distinct keys is bounded by a setting in bytes, counted as
memory (the objects, not only the payload), and the cache keeps serving correctly at its bounds."""

from __future__ import annotations

import gc
import json
import threading
import tracemalloc
from pathlib import Path

import httpx

from core.cache.entry import Entry
from core.cache.request.keys import ROUTES
from core.cache.request.requests import RequestKeys
from core.cache.sizes import HIT_RECORD, entry_bytes
from core.cache.storage.diskstore import DiskStore
from core.cache.storage.hot import HotTier
from core.cache.storage.layered import LayeredCache
from tests.fakes.ollama_server import FakeOllama
from tests.harness import proxy_in_thread, wait_for

CHAT = ROUTES["/api/chat"]


def chat_body(index: int) -> bytes:
    return json.dumps(
        {
            "model": "llama3.2",
            "stream": False,
            "options": {"temperature": 0},
            "messages": [{"role": "user", "content": f"question {index}"}],
        }
    ).encode()


def test_the_memo_keeps_bodies_up_to_its_bound_in_bytes_and_the_facts_stay_right() -> None:
    keys, fresh = RequestKeys(memo_bytes=20_000), RequestKeys(memo_bytes=0)
    for index in range(500):
        keys.facts(CHAT, chat_body(index), None)
        bodies, used = keys.remembered
        assert used <= 20_000
    assert 0 < bodies < 500  # far fewer than 500 bodies fit in 20,000 bytes of memory
    last = chat_body(499)
    assert keys.facts(CHAT, last, None) is keys.facts(CHAT, last, None)  # a remembered body: no new parse
    assert keys.facts(CHAT, chat_body(3), None) == fresh.facts(CHAT, chat_body(3), None)


def test_a_memo_bounded_at_zero_remembers_nothing() -> None:
    keys = RequestKeys(memo_bytes=0)
    first, again = keys.facts(CHAT, chat_body(1), None), keys.facts(CHAT, chat_body(1), None)
    assert first == again and first is not again and keys.remembered == (0, 0)


def test_the_memo_counts_at_least_the_memory_it_holds() -> None:
    bodies = [chat_body(index) for index in range(2000)]
    gc.collect()
    tracemalloc.start()
    try:
        keys = RequestKeys(memo_bytes=2**30)
        for body in bodies:
            keys.facts(CHAT, body, None)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _, counted = keys.remembered
    assert counted >= held  # the bodies are the test's, so the memo holds less than it counts


def test_an_entry_counts_at_least_the_memory_a_decoded_one_holds() -> None:
    blob = Entry(
        "k" * 64,
        "/api/chat",
        "llama3.2:latest",
        False,
        "application/json; charset=utf-8",
        [b"x" * 1000],
        [1.5],
        created=1.0,
        duration_s=1.5,
        prompt_tokens=3,
        completion_tokens=7,
    ).encode()
    gc.collect()
    tracemalloc.start()
    try:
        entries = [Entry.decode(blob) for _ in range(500)]
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert entry_bytes(entries[0]) * len(entries) >= held - 8 * len(entries)  # the list's own pointers aside


def test_hit_counts_ask_for_a_flush_once_they_reach_their_bound_and_are_then_in_the_store(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    try:
        entry = Entry("k", "/api/chat", "llama3.2:latest", False, "application/json", [b"{}"])
        store.put(entry)
        cache = LayeredCache(store, HotTier(0), hits_bytes=3 * HIT_RECORD)
        asked: list[int] = []
        cache.on_hits_full = lambda: asked.append(1)
        for _ in range(3):
            cache.note_hit("k", 5.0)
        assert asked == []  # three fit in the bound
        for _ in range(10):
            cache.note_hit("k", 6.0)
        assert asked == [1]  # asked once, not once per hit
        cache.flush()
        again = DiskStore(tmp_path / "c", 10**8)  # what another process sees on disk
        try:
            assert again.recent(1)[0]["hits"] == 13
        finally:
            again.close()
        for _ in range(4):
            cache.note_hit("k", 7.0)
        assert asked == [1, 1]  # counting again after the flush
    finally:
        store.close()


def test_sqlite_is_opened_with_its_bounds_on_every_thread_s_connection(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8, sqlite_cache=2**20, sqlite_mmap=2**16)
    seen: list[tuple[int, ...]] = []

    def read() -> None:
        pragma = store._cache._sql  # this thread's own connection, as diskcache opens one per thread
        names = ("cache_size", "mmap_size", "soft_heap_limit")
        seen.append(tuple(pragma(f"PRAGMA {name}").fetchone()[0] for name in names))

    try:
        read()
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert seen == [(2**20 // 4 // 4096, 2**16, 2**20)] * 2
    finally:
        store.close()


def test_a_tiny_sqlite_cache_still_reads_every_entry_right(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**9, sqlite_cache=0, sqlite_mmap=0)
    try:
        answers = {f"{index:064x}": f'{{"n":{index}}}'.encode() * 40 for index in range(3000)}
        store.put_many(
            [Entry(key, "/api/chat", "m", False, "application/json", [answer]) for key, answer in answers.items()]
        )
        for key, answer in answers.items():
            found = store.get(key)
            assert found is not None and found.chunks == [answer]
    finally:
        store.close()


def test_a_small_memory_tier_keeps_its_bound_and_every_answer_still_hits(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with proxy_in_thread(url, **{"cache.memory_limit": "20KiB", "cache.memo_limit": "4KiB"}) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=30.0) as client:
            first = [client.post("/api/chat", content=chat_body(index)) for index in range(60)]
            assert {answer.headers["x-cache"] for answer in first} == {"MISS"}
            again = [client.post("/api/chat", content=chat_body(index)) for index in range(60)]
        assert [answer.headers["x-cache"] for answer in again] == ["HIT"] * 60
        assert [answer.content for answer in again] == [answer.content for answer in first]
        assert fake.total_calls("/api/chat") == 60
        stats = proxy.stats()
        hot, memo = stats["hot"], stats["memo"]
        assert isinstance(hot, dict) and isinstance(memo, dict)
        assert 0 < hot["entries"] < 60 and hot["bytes"] <= 20 * 1024
        assert 0 < memo["bodies"] < 60 and memo["bytes"] <= 4 * 1024


def test_hit_counts_past_their_bound_reach_the_disk_while_the_proxy_serves(
    upstream: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    _, url = upstream
    with proxy_in_thread(url, **{"cache.hits_limit": "1"}) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=30.0) as client:
            client.post("/api/chat", content=chat_body(1))
            hits = [client.post("/api/chat", content=chat_body(1)).headers["x-cache"] for _ in range(3)]
        assert hits == ["HIT"] * 3

        def counted() -> bool:
            other = DiskStore(tmp_path / "cache", 10**8)  # another process's view: only what is written
            try:
                return [info["hits"] for info in other.recent(1)] == [3]
            finally:
                other.close()

        wait_for(counted, "the hit counts written to disk")
