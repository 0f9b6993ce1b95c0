"""Named events for ``/-/events`` subscribers, beside the stats pushed once a second.

Events are named after what happened (``ollama_did_exit``, ``entry_did_store``, ``tune_did_progress``),
so the desktop app turns each into a Qt signal in one place. A subscriber that falls behind loses its
oldest events rather than holding memory: the stats snapshot carries the current state anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUEUE_SIZE = 256  # events kept for one slow subscriber


class EventHub:
    """Fans events out to every current subscriber (all on the engine's event loop)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()

    def __bool__(self) -> bool:
        """Whether anyone listens: publishers can skip building a payload otherwise."""
        return bool(self._queues)

    def publish(self, name: str, payload: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((name, payload))

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[tuple[str, dict[str, Any]]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
