"""The memory tier in front of the store: bounded in bytes, least recently used out first, never stale."""

from __future__ import annotations

from pathlib import Path

from core.cache.entry import Entry
from core.cache.storage.hot import HotTier


def entry(key: str, size: int, model: str = "m", expires: float = 0.0) -> Entry:
    return Entry(key, "/api/chat", model, False, "application/json", [b"x" * size], expires=expires)


def test_the_least_recently_used_answer_leaves_first_when_the_bound_is_reached() -> None:
    bound = 4 * HotTier.cost(entry("a", 900)) + 100  # room for four of these answers with what each costs
    hot = HotTier(max_bytes=bound)
    for key in ("a", "b", "c"):
        hot.put(entry(key, 900))
    assert hot.get("a", now=1.0) is not None  # "a" is used again: "b" is now the oldest
    hot.put(entry("d", 900))
    hot.put(entry("e", 900))
    assert hot.get("b", now=1.0) is None
    assert all(hot.get(key, now=1.0) is not None for key in ("a", "c", "d", "e"))
    assert hot.bytes <= bound and len(hot) == 4


def test_an_expired_answer_is_never_served_from_memory() -> None:
    hot = HotTier(max_bytes=4000)
    hot.put(entry("k", 10, expires=100.0))
    assert hot.get("k", now=99.9) is not None
    assert hot.get("k", now=100.0) is None
    assert len(hot) == 0 and hot.bytes == 0


def test_one_huge_answer_does_not_flush_the_others_out() -> None:
    hot = HotTier(max_bytes=4000)
    hot.put(entry("small", 10))
    hot.put(entry("huge", 1001))  # over a quarter of the bound: read from the store instead
    assert hot.get("huge", now=1.0) is None and hot.get("small", now=1.0) is not None


def test_clearing_one_model_keeps_the_others() -> None:
    hot = HotTier(max_bytes=4000)
    hot.put(entry("a", 10, model="llama3.2:latest"))
    hot.put(entry("b", 10, model="qwen3:0.6b"))
    hot.clear("llama3.2:latest")
    assert hot.get("a", now=1.0) is None and hot.get("b", now=1.0) is not None
    hot.clear()
    assert len(hot) == 0 and hot.bytes == 0


def test_a_zero_bound_keeps_nothing() -> None:
    hot = HotTier(max_bytes=0)
    hot.put(entry("k", 1))
    assert hot.get("k", now=1.0) is None


def test_a_new_answer_too_big_for_memory_replaces_the_old_one(tmp_path: Path) -> None:
    hot = HotTier(max_bytes=4000)
    small = Entry("k", "/api/chat", "m", False, "application/json", [b"x" * 10])
    hot.put(small)
    hot.put(Entry("k", "/api/chat", "m", True, "application/x-ndjson", [b"y" * 3000]))
    assert hot.get("k", now=1.0) is None


def test_the_bound_counts_what_an_entry_holds_in_memory_not_only_its_answer() -> None:
    answer = 1000
    hot = HotTier(max_bytes=100 * answer)  # 100 answers' bytes, but each entry holds more than its answer
    for index in range(100):
        hot.put(entry(f"{index:064x}", answer))
    assert len(hot) < 100 and hot.bytes <= 100 * answer
    assert hot.get(f"{99:064x}", now=1.0) is not None  # the newest are kept, and served
    assert hot.get(f"{0:064x}", now=1.0) is None


def test_an_entry_costs_more_as_its_fields_grow() -> None:
    small = HotTier.cost(entry("k", 10))
    assert HotTier.cost(entry("k" * 64, 10)) > small  # the key string counts
    assert HotTier.cost(entry("k", 1010)) >= small + 1000  # and every answer byte
