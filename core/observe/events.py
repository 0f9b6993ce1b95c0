"""Named events for ``/-/events`` subscribers, beside the stats pushed once a second (or less often while quiet).

Events are named after what happened (``ollama_did_exit``, ``entry_did_store``, ``tune_did_progress``),
so the desktop app turns each into a Qt signal in one place. A subscriber that falls behind loses its
oldest events rather than holding memory: the stats snapshot carries the current state anyway.
:attr:`EventHub.active_at` tells when something last happened (an event other than ``stats``, or a new
subscriber) and :attr:`EventHub.working` how many requests are being forwarded upstream now, so the stats
publisher can slow down while nothing happens and nothing is under way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUEUE_SIZE = 256  # events kept for one slow subscriber
STATS = "stats"  # the periodic snapshot: not an event of its own for active_at


class EventHub:
    """Fans events out to every current subscriber (all on the engine's event loop)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self.active_at = time.monotonic()  # when an event other than stats was last published, or one subscribed
        self.working = 0  # requests the proxy is forwarding upstream now (a generation can last minutes)

    def quiet_for(self, now: float) -> float:
        """Seconds since anything happened, at ``now`` (monotonic); 0 while a request is under way."""
        return 0.0 if self.working else now - self.active_at

    def __bool__(self) -> bool:
        """Whether anyone listens: publishers can skip building a payload otherwise."""
        return bool(self._queues)

    def publish(self, name: str, payload: dict[str, Any]) -> None:
        if name != STATS:
            self.active_at = time.monotonic()
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((name, payload))

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[tuple[str, dict[str, Any]]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        self.active_at = time.monotonic()
        try:
            yield queue
        finally:
            self._queues.discard(queue)
