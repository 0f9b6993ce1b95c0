"""Writing new entries to the store behind the answers: one thread, in batches.

A miss's answer is in the memory tier, and served from there, as soon as it is recorded; its write to
disk can wait a little. One long-lived thread takes the entries handed to it and writes those that
gather within `WINDOW_S` of the first in one call (one transaction on disk), so a run of misses costs
one thread wake-up and one commit per batch instead of a worker hand-off and a commit each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")

log = logging.getLogger(__name__)

WINDOW_S = 0.02  # how long the writer waits for more after the first entry of a batch
MAX_BATCH = 64  # entries written in one call at most


class Writer(Generic[Item]):
    """Hands items to ``write`` (called in the writer's thread, with a list of one or more) in batches."""

    def __init__(
        self, write: Callable[[list[Item]], None], window_s: float = WINDOW_S, max_batch: int = MAX_BATCH
    ) -> None:
        self._write = write
        self._window_s = window_s
        self._max_batch = max_batch
        self._pending: list[Item] = []
        self._busy = False  # a batch is being written
        self._stopping = False  # drained: the thread ends once nothing is left
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, item: Item) -> None:
        """Queue ``item`` for the next batch (never blocks on the store)."""
        with self._changed:
            self._pending.append(item)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ollacache-store-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    if self._stopping:  # decided under the lock: a later submit starts a new thread
                        self._thread, self._stopping = None, False
                        self._changed.notify_all()
                        return
                    self._changed.wait()
                self._changed.wait_for(lambda: len(self._pending) >= self._max_batch, self._window_s)
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                self._busy = True
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - the writer outlives a failed batch; the caller reports failures
                log.exception("writing %d entries failed", len(batch))
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def idle(self) -> bool:
        """Whether everything submitted so far is written."""
        with self._changed:
            return not self._pending and not self._busy

    def wait_idle(self) -> None:
        """Block until everything submitted so far is written."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending and not self._busy)

    def stop(self) -> None:
        """Write everything submitted so far and end the thread (with what it holds, such as the store's
        connection of that thread); a later :meth:`submit` starts a new one."""
        with self._changed:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._changed.notify_all()
        thread.join()

    async def drain(self) -> None:
        """Write everything submitted so far and end the thread, waiting off the event loop."""
        if self._thread is not None:
            await asyncio.to_thread(self.stop)
