"""One entry for both stream modes: what a hit is answered with, in the mode its request asks (pure).

An entry recorded streamed answers a non-streamed request with the stream merged
(:mod:`core.cache.request.merge`); one recorded whole answers a streamed request with a stream synthesised
from it (:mod:`core.cache.request.synthesis`). Each conversion goes out with the content type the upstream
sends in that mode.

The pace of a replay: the recorded offsets of a same-mode entry; a merged answer at the offset of the
stream's last chunk (when the whole answer was there); a synthesised stream, which has no recorded
pace, spread evenly over the time the upstream took, its last chunk at that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.cache.request.keys import ROUTES
from core.cache.request.merge import can_merge, merge
from core.cache.request.synthesis import synthesise
from core.cache.request.usage import without_usage

NDJSON = "application/x-ndjson"  # Ollama's native streams
SSE = "text/event-stream"  # OpenAI-compatible streams
NATIVE_JSON = "application/json; charset=utf-8"  # Ollama's native whole answers (gin's c.JSON)
OPENAI_JSON = "application/json"  # Ollama's /v1 whole answers
_OPENAI_STREAMS = frozenset(path for path, route in ROUTES.items() if route.api == "openai")


class Recorded(Protocol):
    """What a conversion needs of an entry (:class:`core.cache.entry.Entry` has it)."""

    @property
    def route(self) -> str: ...

    @property
    def streamed(self) -> bool: ...

    @property
    def chunks(self) -> list[bytes]: ...

    @property
    def offsets_s(self) -> list[float]: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def content_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Replay:
    """The chunks a hit sends, each with its offset in seconds from the start of the replay, and their type."""

    chunks: Sequence[bytes]
    offsets_s: Sequence[float]
    content_type: str
    converted: bool = False


def can_convert(route_path: str, streamed: bool, chunks: Sequence[bytes]) -> bool:
    """Whether an entry recorded on ``route_path`` (``streamed`` or not) can answer in the other mode.

    A whole chat or generate answer always can; a stream when :func:`~core.cache.request.merge.can_merge`.
    """
    if streamed:
        return can_merge(route_path, chunks)
    route = ROUTES.get(route_path)
    return route is not None and route.kind in ("chat", "generate")


def in_mode(entry: Recorded, streamed: bool, include_usage: bool = False) -> Replay:
    """What answers a request for ``entry`` that asks ``streamed``; ``include_usage`` is its
    ``stream_options.include_usage`` (it only matters for a stream on an OpenAI route: a stored one is sent
    without its usage unless asked, a synthesised one with it only when asked).

    Raises :class:`~core.cache.request.merge.Unmergeable` when the entry cannot be converted.
    """
    if entry.streamed == streamed:
        offsets = entry.offsets_s if len(entry.offsets_s) == len(entry.chunks) else [0.0] * len(entry.chunks)
        chunks = entry.chunks
        if streamed and not include_usage and entry.route in _OPENAI_STREAMS and any(b'"usage"' in c for c in chunks):
            chunks = without_usage(chunks)  # recorded with the usage this request did not ask for
        return Replay(chunks, offsets, entry.content_type)
    openai = entry.route.startswith("/v1/")
    if entry.streamed:
        at = entry.offsets_s[-1] if entry.offsets_s else entry.duration_s
        return Replay([merge(entry.route, entry.chunks)], [at], OPENAI_JSON if openai else NATIVE_JSON, True)
    chunks = synthesise(entry.route, b"".join(entry.chunks), include_usage)
    return Replay(chunks, spread(len(chunks), entry.duration_s), SSE if openai else NDJSON, True)


def spread(count: int, duration_s: float) -> list[float]:
    """Offsets for ``count`` chunks evenly over ``duration_s`` seconds, the last at ``duration_s``."""
    return [duration_s * (k + 1) / count for k in range(count)]
