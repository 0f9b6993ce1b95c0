"""Named events for ``/-/events`` subscribers, beside the stats pushed once a second (or less often while quiet).

Events are named after what happened (``ollama_did_exit``, ``entry_did_store``, ``tune_did_progress``) and
declared once, with their payloads, in :mod:`core.observe.published`: nothing else is published, and the
desktop app turns each into a Qt signal of its own. A subscriber that falls behind loses its
oldest events rather than holding memory: the stats snapshot carries the current state anyway.

Finished requests come in batches: ``requests_did_finish`` at most every :data:`BATCH_S` seconds, carrying the
latest :data:`BATCH_MAX` of them (``requests``, oldest first) and how many finished since the last batch
(``count``). A request forwarded to Ollama that is still under way when a batch goes out is told in
``requests_did_start`` (with its ``id``), so a long generation shows while it runs; its finish carries the same
``id``. One that starts and ends within a batch is told once, finished. At a thousand hits a second that is four
events a second instead of a thousand, which is what lets a dashboard follow without spending a core on it; the
counts themselves are in the stats. :attr:`EventHub.active_at` tells when something last happened (an event other
than ``stats``, or a new subscriber), so the stats publisher can slow down while nothing happens (and nothing is
being answered upstream: :attr:`core.http.accounts.Accounts.working`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.observe.published import NAMES

QUEUE_SIZE = 256  # events kept for one slow subscriber
STATS = "stats"  # the periodic snapshot: not an event of its own for active_at
REQUESTS_DID_FINISH = "requests_did_finish"
REQUESTS_DID_START = "requests_did_start"
BATCH_S = 0.25  # the longest a finished request waits to be told
BATCH_MAX = 100  # finished requests a batch carries (the newest); its count says how many there were


class EventHub:
    """Fans events out to every current subscriber (all on the engine's event loop)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self.active_at = time.monotonic()  # when an event other than stats was last published, or one subscribed
        self._finished: deque[dict[str, Any]] = deque(maxlen=BATCH_MAX)
        self._count = 0  # finished since the last batch
        self._starting: dict[int, dict[str, Any]] = {}  # started since the last batch, not finished yet
        self._ids = 0
        self._flush: asyncio.TimerHandle | None = None

    def quiet_for(self, now: float) -> float:
        """Seconds since anything happened, at ``now`` (monotonic)."""
        return now - self.active_at

    def __bool__(self) -> bool:
        """Whether anyone listens: publishers can skip building a payload otherwise."""
        return bool(self._queues)

    def publish(self, name: str, payload: dict[str, Any]) -> None:
        """Send event ``name`` (one of :data:`core.observe.published.NAMES`) to every subscriber."""
        if name not in NAMES:
            raise ValueError(f"{name!r} is not an event of core.observe.published")
        if name != STATS:
            self.active_at = time.monotonic()
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((name, payload))

    def request_started(self, payload: dict[str, Any]) -> int:
        """A request forwarded upstream began; its id, for :meth:`request_finished`. Call on the event loop."""
        self._ids += 1
        if self._queues:
            self._starting[self._ids] = {**payload, "id": self._ids}
            self._schedule()
        return self._ids

    def request_finished(self, payload: dict[str, Any]) -> None:
        """One finished request (with the ``id`` its start was given, if any), told with the next batch (within
        :data:`BATCH_S`). Call on the event loop."""
        if payload.get("id") is not None:
            self._starting.pop(payload["id"], None)  # finished before its start was told: told once
        self._finished.append(payload)
        self._count += 1
        self._schedule()

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(BATCH_S, self._publish_batch)

    def _publish_batch(self) -> None:
        self._flush = None
        if self._starting:
            started, self._starting = list(self._starting.values()), {}
            self.publish(REQUESTS_DID_START, {"requests": started[-BATCH_MAX:], "count": len(started)})
        if self._count:
            batch, count = list(self._finished), self._count
            self._finished.clear()
            self._count = 0
            self.publish(REQUESTS_DID_FINISH, {"requests": batch, "count": count})

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[tuple[str, dict[str, Any]]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        self.active_at = time.monotonic()
        try:
            yield queue
        finally:
            self._queues.discard(queue)
