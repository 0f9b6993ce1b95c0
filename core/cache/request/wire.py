"""The two stream formats of the APIs the cache answers, read and written (pure): Ollama's NDJSON lines and the
Server-Sent Events of the OpenAI, Anthropic and Responses APIs, whose events' ``data`` are JSON objects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class Unmergeable(ValueError):
    """A recorded stream that cannot be turned into a whole answer."""


def dumps(value: object) -> bytes:
    """Compact JSON in UTF-8, as Go writes it (minus its HTML escaping, which no JSON reader needs)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def ndjson_lines(chunks: Iterable[bytes]) -> list[dict[str, Any]]:
    """The JSON objects of an NDJSON body recorded in arbitrary pieces."""
    lines = b"".join(chunks).split(b"\n")
    return [_object(line) for line in lines if line.strip()]


def sse_data(chunks: Iterable[bytes]) -> list[dict[str, Any]]:
    """The JSON objects of an SSE body's ``data:`` events, ``[DONE]`` left out."""
    body = b"".join(chunks).replace(b"\r\n", b"\n")
    found: list[dict[str, Any]] = []
    for event in body.split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if data and data.strip() != b"[DONE]":
            found.append(_object(data))
    return found


def _object(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise Unmergeable("a chunk is not a JSON object")
    return value


def sse_event(name: str, data: object) -> bytes:
    """One named Server-Sent Event, as Ollama writes the Anthropic and Responses streams."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"
