"""The store writer: new entries go to the store in batches from one thread, and a drain waits for them."""

from __future__ import annotations

import asyncio
import threading

from core.cache.storage.writer import Writer


def test_entries_handed_over_together_are_written_in_one_batch_and_drain_waits_for_them() -> None:
    batches: list[list[int]] = []
    hold = threading.Event()

    def write(batch: list[int]) -> None:
        hold.wait()  # the first batch is held until everything is submitted
        batches.append(batch)

    writer = Writer(write, window_s=0.0)
    writer.submit(0)
    for item in range(1, 6):
        writer.submit(item)
    assert not writer.idle()
    hold.set()
    asyncio.run(writer.drain())
    assert writer.idle()
    assert sorted(item for batch in batches for item in batch) == [0, 1, 2, 3, 4, 5]  # each written once
    assert len(batches) <= 2  # the ones that came while a batch was written went together


def test_a_batch_never_exceeds_its_limit_and_a_failed_batch_does_not_stop_the_writer() -> None:
    batches: list[list[int]] = []

    def write(batch: list[int]) -> None:
        batches.append(batch)
        if batch[0] == 0:
            raise OSError(28, "No space left on device")

    writer = Writer(write, window_s=0.05, max_batch=3)
    for item in range(7):
        writer.submit(item)
    writer.wait_idle()
    writer.submit(99)
    writer.stop()
    assert all(len(batch) <= 3 for batch in batches)
    assert [item for batch in batches for item in batch] == [0, 1, 2, 3, 4, 5, 6, 99]


def test_a_drain_ends_the_writers_thread_and_a_later_entry_starts_another() -> None:
    written: list[int] = []
    writer = Writer(written.extend, window_s=0.0)

    before = set(threading.enumerate())

    def writers() -> set[threading.Thread]:
        return {t for t in set(threading.enumerate()) - before if t.name == "ollacache-store-writer"}

    writer.submit(1)
    assert len(writers()) == 1
    asyncio.run(writer.drain())
    assert written == [1] and writers() == set()  # nothing held open (the store's connection of that thread)
    writer.submit(2)
    writer.stop()
    assert written == [1, 2] and writers() == set()
