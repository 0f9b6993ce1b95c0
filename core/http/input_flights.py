"""Embedding inputs being asked of the upstream right now, so that identical ones in flight make one call.

A batch that misses inputs claims each of them: an input no other request is asking for becomes its own (it
asks the upstream for it), one that another request is asking for right now is followed (it waits for that
request's vector). A request with only followed inputs makes no upstream call at all (``X-Cache: SHARED``), so
a hundred identical embedding requests arriving together cost the model one call, as on the other routes.

The owner settles each input it claimed: with its vector once the upstream answered, or with nothing when it
did not (an error, a wrong answer, its client gone), and always before it finishes. A follower whose input was
settled with nothing asks the upstream for it itself: another client's failure is never passed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vector:
    """An input's vector as the upstream wrote it, and its share of the upstream's time (what a follower saved)."""

    text: bytes
    seconds: float


@dataclass
class Claim:
    """A request's share of the inputs it misses: those it asks for (``owned``, indices in its batch's distinct
    inputs) and those it follows (``followed``: index to the other request's pending vector)."""

    owned: list[int]
    followed: dict[int, asyncio.Future[Vector | None]]
    keys: list[str] = field(default_factory=list)  # of the owned inputs, to settle


class InputFlights:
    """The pending vector of each input key some request is asking the upstream for."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[Vector | None]] = {}
        self.waiting = 0  # followers waiting for a vector now

    async def follow(self, pending: asyncio.Future[Vector | None]) -> Vector | None:
        """The vector another request is getting (None: it got none). Its end never cancels this wait."""
        self.waiting += 1
        try:
            return await asyncio.shield(pending)
        finally:
            self.waiting -= 1

    def claim(self, keys: Sequence[str], missing: Sequence[int]) -> Claim:
        """Claim the ``missing`` inputs (indices into ``keys``): each is followed where it is in flight, else
        owned and in flight from now on."""
        claim = Claim([], {})
        loop = asyncio.get_running_loop()
        for i in missing:
            pending = self._pending.get(keys[i])
            if pending is not None:
                claim.followed[i] = pending
            else:
                self._pending[keys[i]] = loop.create_future()
                claim.owned.append(i)
                claim.keys.append(keys[i])
        return claim

    def pending(self, keys: Sequence[str], missing: Sequence[int]) -> dict[int, asyncio.Future[Vector | None]] | None:
        """The pending vector of each of the ``missing`` inputs when every one is in flight, else None: how a
        request that may not call the upstream (offline, ``only-if-cached``) can still be answered."""
        flying = {i: self._pending.get(keys[i]) for i in missing}
        return None if any(pending is None for pending in flying.values()) else flying  # type: ignore[return-value]

    def settle(self, claim: Claim, vectors: Sequence[bytes] | None, seconds: float = 0.0) -> None:
        """End the owned inputs of ``claim`` with their ``vectors`` (in order; ``seconds``: the upstream's time for
        each), or with nothing (None). Settling again does nothing, so a ``finally`` may settle what was settled."""
        for index, key in enumerate(claim.keys):
            pending = self._pending.pop(key, None)
            if pending is not None and not pending.done():
                pending.set_result(Vector(vectors[index], seconds) if vectors is not None else None)
        claim.keys = []

    @property
    def in_flight(self) -> int:
        """How many inputs are being asked for now."""
        return len(self._pending)
