"""A stored answer: the recorded chunks with their timing, and the metadata shown to users.

An entry is written as one blob so a store can replace it atomically: a JSON header line with the
metadata and the chunk lengths, then the chunks' bytes back to back, then the request body the entry
answers (its length in the header as ``request_length``; a blob written before it was kept has none and
decodes with an empty request). ``decode`` checks the lengths, so a truncated or damaged blob is refused
(:class:`CorruptEntry`) instead of replaying wrong bytes. Credentials are never part of an entry: only
the request's body (never its headers), the upstream's answer and what describes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

MAGIC = b"OLLACACHE-ENTRY-1\n"


class CorruptEntry(ValueError):
    """A stored blob that is not a whole entry."""


@dataclass(slots=True)
class Entry:
    """One cached answer.

    ``chunks`` are the response body as it arrived from the upstream, one element per chunk of a
    stream (NDJSON lines or SSE events), or a single element for a non-streamed answer.
    ``offsets_s`` holds, for each chunk, the seconds since the request was sent upstream, so a
    replay can keep the recorded pace. ``duration_s`` is the upstream's total time, which a hit saves.
    ``request`` is the body of the request it answers, as the client sent it (for explaining a miss and for
    export); it is not part of the metadata shown in listings. ``digest`` names the build of the model that
    gave the answer (blobs written before it existed decode with ``""``).
    Each entry carries its own expiry, so stores and the memory tier need no TTL of their own.
    """

    key: str
    route: str
    model: str
    streamed: bool
    content_type: str
    chunks: list[bytes]
    offsets_s: list[float] = field(default_factory=list)
    status: int = 200
    created: float = 0.0
    duration_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    expires: float = 0.0  # wall-clock seconds from which it is no longer served; 0 = never
    digest: str = ""  # the build of the model that answered (Ollama's digest); "" when not known
    request: bytes = b""  # the request body this entry answers (no headers, so no credentials)

    def live(self, now: float) -> bool:
        """Whether the entry may still be served at ``now`` (wall-clock seconds)."""
        return not self.expires or now < self.expires

    @property
    def size(self) -> int:
        """Bytes of the answer body."""
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def info(self) -> dict[str, object]:
        """Metadata for listings (no body). Read field by field: ``dataclasses.asdict`` would deep-copy the
        chunks only to drop them, a third of the cost of writing an entry."""
        data: dict[str, object] = {name: getattr(self, name) for name in _METADATA}
        data["size"] = self.size
        return data

    def encode(self) -> bytes:
        header = self.info()
        header["lengths"] = [len(chunk) for chunk in self.chunks]
        header["offsets_s"] = [round(offset, 6) for offset in self.offsets_s]
        if self.request:
            header["request_length"] = len(self.request)
        return b"".join((MAGIC, json.dumps(header, separators=(",", ":")).encode(), b"\n", *self.chunks, self.request))

    @classmethod
    def decode(cls, blob: bytes) -> Entry:
        """Parse a blob made by :meth:`encode`; raises :class:`CorruptEntry` if it is not whole."""
        if not blob.startswith(MAGIC):
            raise CorruptEntry("not an Ollacache entry")
        end = blob.find(b"\n", len(MAGIC))
        try:
            header = json.loads(blob[len(MAGIC) : end])
            lengths: list[int] = header.pop("lengths")
            request_length: int = header.pop("request_length", 0)
            header.pop("size", None)
        except (ValueError, KeyError, AttributeError) as error:
            raise CorruptEntry(f"unreadable header: {error}") from None
        body = memoryview(blob)[end + 1 :]
        if end < 0 or not isinstance(request_length, int) or sum(lengths) + request_length != len(body):
            raise CorruptEntry("the body's length does not match its header")
        chunks, position = [], 0
        for length in lengths:
            chunks.append(bytes(body[position : position + length]))
            position += length
        try:
            return cls(chunks=chunks, request=bytes(body[position:]), **header)
        except TypeError as error:
            raise CorruptEntry(f"unexpected header: {error}") from None


_METADATA = tuple(f.name for f in fields(Entry) if f.name not in ("chunks", "offsets_s", "request"))
