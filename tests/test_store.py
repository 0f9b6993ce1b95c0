"""The disk store: entries round-trip, survive a reopen, expire, stay within their byte bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.cache.entry import CorruptEntry, Entry
from core.cache.storage.diskstore import DiskStore


def make_entry(
    key: str = "k1", model: str = "llama3.2:latest", body: bytes = b'{"done":true}\n', **extra: object
) -> Entry:
    return Entry(
        key=key,
        route="/api/chat",
        model=model,
        streamed=True,
        content_type="application/x-ndjson",
        chunks=[b'{"message":{"content":"hi"}}\n', body],
        offsets_s=[0.01, 0.02],
        created=1_700_000_000.0,
        duration_s=1.5,
        prompt_tokens=10,
        completion_tokens=2,
        **extra,
    )  # type: ignore[arg-type]


def test_an_entry_round_trips_with_its_chunk_boundaries() -> None:
    entry = make_entry()
    decoded = Entry.decode(entry.encode())
    assert decoded == entry
    assert decoded.chunks == entry.chunks and decoded.tokens == 12


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],
        lambda b: b + b"x",
        lambda b: b"garbage",
        lambda b: b[:30],
        lambda b: b.replace(b'"lengths"', b'"lenghts"'),
    ],
)
def test_a_damaged_blob_is_refused_not_replayed(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CorruptEntry):
        Entry.decode(damage(make_entry().encode()))


def test_entries_survive_closing_and_reopening(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    store.put(make_entry())
    store.close()
    again = DiskStore(tmp_path / "c", 10**8)
    assert again.get("k1") == make_entry()
    assert again.count() == 1
    again.close()
    assert (os.stat(tmp_path / "c").st_mode & 0o777) == 0o700


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_expired_entry_is_not_served(tmp_path: Path) -> None:
    clock = Clock(1_000.0)
    store = DiskStore(tmp_path / "c", 10**8, clock=clock)
    entry = make_entry()
    entry.expires = 1_060.0  # stored at 1,000 with a 60 s lifetime
    store.put(entry)
    clock.now = 1_059.0
    assert store.get("k1") is not None
    clock.now = 1_061.0
    assert store.get("k1") is None
    assert store.recent() == []
    store.close()


def test_the_byte_bound_evicts_the_least_recently_used(tmp_path: Path) -> None:
    clock = Clock(10**9)
    store = DiskStore(tmp_path / "c", size_limit=2_000_000, clock=clock)
    big = b"x" * 100_000  # stored as files, counted in full against the limit
    for i in range(40):
        clock.now += 10
        store.put(make_entry(key=f"k{i}", body=big))
        clock.now += 10
        store.note_hit("k0", clock.now)  # the first one stays in use
        store.flush()
    assert store.volume() <= 2_000_000 * 1.5
    assert store.get("k0") is not None
    assert store.get("k1") is None and store.get("k39") is not None
    store.close()


def test_reads_write_nothing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    store.put(make_entry())
    wal = tmp_path / "c" / "cache.db-wal"
    before = wal.stat().st_size, wal.stat().st_mtime_ns
    for _ in range(50):
        assert store.get("k1") is not None
    assert (wal.stat().st_size, wal.stat().st_mtime_ns) == before
    store.close()


def test_clear_by_model_and_delete(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    store.put(make_entry("a", model="llama3.2:latest"))
    store.put(make_entry("b", model="qwen3:0.6b"))
    store.put(make_entry("c", model="qwen3:0.6b"))
    assert store.clear("qwen3:0.6b") == 2
    assert [info["key"] for info in store.recent()] == ["a"]
    assert store.delete("a") and not store.delete("a")
    assert store.count() == 0
    store.close()


def test_recent_lists_newest_first_with_hit_counts(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    for key in ("old", "new"):
        store.put(make_entry(key))
    store.note_hit("old", 123.0)
    store.note_hit("old", 124.0)
    assert [(i["key"], i["hits"]) for i in store.recent()] == [("new", 0), ("old", 2)]
    store.close()
    again = DiskStore(tmp_path / "c", 10**8)
    assert {i["key"]: (i["hits"], i["last_hit"]) for i in again.recent()}["old"] == (2, 124.0)
    assert again.recent(model="other:latest") == []
    again.close()


def test_a_corrupt_blob_in_the_store_reads_as_a_miss_and_is_dropped(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    store._cache.set("k1", make_entry().encode()[:-3])
    assert store.get("k1") is None
    assert store.count() == 0
    store.close()


def test_a_damaged_database_is_moved_aside_and_recreated(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    store = DiskStore(directory, 10**8)
    store.put(make_entry())
    assert store.get("k1") is not None
    store.close()
    assert [p.name.startswith("c.corrupt-") for p in tmp_path.iterdir() if p.name != "c"] == [True]


def test_the_diskcache_parts_the_store_reads_directly_are_still_there(tmp_path: Path) -> None:
    """diskcache is pinned because the store queries its table: this fails first when an upgrade changes it."""
    import diskcache

    assert diskcache.__version__ == "5.6.3"
    cache = diskcache.Cache(str(tmp_path / "raw"), tag_index=True)
    columns = {row[1] for row in cache._sql("PRAGMA table_info(Cache)").fetchall()}
    assert {"key", "raw", "store_time", "expire_time", "tag"} <= columns
    cache.set("k", b"v", tag="m")
    assert cache._sql("SELECT key FROM Cache WHERE tag = ? AND raw = 1", ("m",)).fetchall() == [("k",)]
    cache.close()


def test_hit_counts_go_with_cleared_entries(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    entry = Entry("k", "/api/chat", "m:latest", False, "application/json", [b"{}"])
    store.put(entry)
    for when in (1.0, 2.0, 3.0):
        store.note_hit("k", when)
    store.flush()
    store.clear("m:latest")
    store.put(entry)
    assert store.recent()[0]["hits"] == 0
    store.close()


def test_hit_counts_add_up_over_flushes_and_drop_an_entry_evicted_meanwhile(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    store.put(make_entry("kept"))
    store.put(make_entry("gone"))
    for when in (1.0, 2.0):
        store.note_hit("kept", when)
    store.flush()
    store.note_hit("kept", 5.0)
    store.note_hit("gone", 5.0)
    store._cache.delete("gone")  # evicted by diskcache between the hit and the flush, without the store knowing
    store.flush()
    store.put(make_entry("gone"))
    counts = {i["key"]: (i["hits"], i["last_hit"]) for i in store.recent()}
    assert counts == {"kept": (3, 5.0), "gone": (0, None)}
    store.close()


def test_hit_counts_kept_by_an_earlier_version_are_taken_over(tmp_path: Path) -> None:
    import diskcache

    store = DiskStore(tmp_path / "c", 10**8)
    store.put(make_entry("old"))
    store.close()
    with diskcache.Cache(str(tmp_path / "c" / "meta"), eviction_policy="none") as meta:  # as earlier versions kept them
        meta.set("old", (7, 99.0))
    again = DiskStore(tmp_path / "c", 10**8)
    assert {i["key"]: (i["hits"], i["last_hit"]) for i in again.recent()} == {"old": (7, 99.0)}
    assert not (tmp_path / "c" / "meta").exists()
    again.close()
