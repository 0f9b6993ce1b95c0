"""The cache decision for one request on a cached route (pure: no I/O, no clock).

The proxy gathers the facts (the request's key and stream mode, or that it could not be keyed; whether
caching is on; the entry found, if any) and carries out what comes back: answer from the entry, forward
and record, or forward untouched. Per-request controls (``Cache-Control``), answers shared between
identical requests in flight and entries that serve both stream modes extend the facts and the
outcomes here, so the proxy keeps only the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Outcome(Enum):
    """What the proxy does, named as the ``X-Cache`` header tells it."""

    HIT = "HIT"  # answer from the entry, without calling the upstream
    MISS = "MISS"  # forward, record the answer, store it if it turns out complete
    BYPASS = "BYPASS"  # forward untouched, store nothing

    @property
    def header(self) -> bytes:
        return self.value.encode()


@dataclass(frozen=True, slots=True)
class Request:
    """What the decision needs of a keyed request."""

    key: str
    model: str
    streamed: bool


class Stored(Protocol):
    """What the decision needs of an entry found for the key."""

    @property
    def streamed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str

    @property
    def records(self) -> bool:
        """Whether the upstream's answer is recorded for the store."""
        return self.outcome is Outcome.MISS


HIT = Decision(Outcome.HIT, "a stored answer in the same mode")
MISS = Decision(Outcome.MISS, "nothing stored for this key")
MISS_OTHER_MODE = Decision(Outcome.MISS, "the stored answer was recorded in the other stream mode; it is replaced")
NOT_KEYED = Decision(Outcome.BYPASS, "the request cannot be keyed (not a JSON object with a model)")
PAUSED = Decision(Outcome.BYPASS, "caching is paused")


def decide(request: Request | None, found: Stored | None, *, caching: bool = True) -> Decision:
    """Hit, miss-and-record or bypass for ``request`` (``None``: it could not be keyed).

    ``found`` is the live entry stored under the request's key, if any (expired entries are never
    found); ``caching`` is off while the user has paused the cache.
    """
    if request is None:
        return NOT_KEYED
    if not caching:
        return PAUSED
    if found is None:
        return MISS
    if found.streamed != request.streamed:
        return MISS_OTHER_MODE
    return HIT
