"""An error in the wire format of each API the proxy speaks, whole or as the last event of a stream (pure).

A stream cut off before its end gets one last event that every client of that API reads as a failure: Ollama's
``{"error"}`` line, an OpenAI chunk with an ``error`` object, Anthropic's ``error`` event, the Responses API's
``error`` event (numbered after the events sent). A whole error has the shape of the API's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.cache.request.keys import Route
from core.cache.request.wire import dumps, sse_event


def _openai(message: str) -> dict[str, object]:
    return {"error": {"message": message, "type": "api_error", "param": None, "code": None}}


def _anthropic(message: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": "api_error", "message": message}}


def error_chunk(route: Route, message: str, sent: Sequence[bytes] = ()) -> bytes:
    """The last event a client gets when the upstream breaks off a stream on ``route``, after the chunks
    ``sent`` (they number a Responses event)."""
    if route.api == "ollama":
        return json.dumps({"error": message}).encode() + b"\n"
    if route.api == "anthropic":
        return sse_event("error", _anthropic(message))
    if route.api == "responses":
        number = sum(chunk.count(b"\n\n") for chunk in sent)
        event = {"type": "error", "code": "api_error", "message": message, "param": None, "sequence_number": number}
        return sse_event("error", event)
    return b"data: " + json.dumps(_openai(message)).encode() + b"\n\n"


def error_body(route_api: str, message: str) -> bytes:
    """A whole error answer (non-streamed) in the shape of API family ``route_api``."""
    if route_api in ("openai", "responses"):
        return json.dumps(_openai(message)).encode()
    if route_api == "anthropic":
        return dumps(_anthropic(message))
    return json.dumps({"error": message}).encode()
