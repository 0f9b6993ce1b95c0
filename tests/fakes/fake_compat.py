"""How Ollama's Anthropic and Responses writers put a native chat answer on the wire.

Both compatibility layers run the request as ``/api/chat`` and convert what the chat handler writes: every
native chunk into SSE events (a converter holding the stream's state), or the one ``stream: false``
object into a whole answer (JSON and a trailing newline, Go's ``json.Encoder``). Their failure modes are
the chat handler's: a runner failing before the first chunk, or in an answer that is not streamed, is an
error response; failing later, it writes an ``{"error"}`` line, which the converters read as an empty
chunk, so the stream just ends (config ``error_after_chunks``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.responses import Response

from .fake_turns import Host, Turn, failed_after, native_chunks, native_whole
from .fake_wire import SSE, RequestError, json_response, pause, stream_response

STREAM_HEADERS = {"cache-control": "no-cache", "connection": "keep-alive"}  # set by both middlewares
Convert = Callable[[Mapping[str, Any]], list[bytes]]


async def answer_converted(
    host: Host,
    cfg: Mapping[str, Any],
    turn: Turn,
    *,
    stream: bool,
    whole: Callable[[Mapping[str, Any]], dict[str, Any]],
    convert: Convert,
) -> Response:
    """``turn`` as ``whole`` makes the native answer into one object, or streamed as ``convert`` makes each
    native chunk into SSE events (the events of one chunk are sent together, ``chunk_delay_ms`` apart)."""
    failed = failed_after(cfg, turn)
    if failed is not None and (failed == 0 or not stream):
        raise RequestError(500, str(cfg["fail_message"]))  # the handler's c.JSON, reshaped by the writer
    delay = float(cfg["chunk_delay_ms"])
    if not stream:
        await pause(delay * len(turn.answer.pieces), host.closing)
        return json_response(whole(native_whole(turn)), newline=True, media_type="application/json")
    chunks: Iterator[Mapping[str, Any]] = native_chunks(turn)
    if failed is not None:
        chunks = itertools.chain(itertools.islice(chunks, failed), [{"error": cfg["fail_message"]}])
    return stream_response(
        (convert(chunk) for chunk in chunks),
        media_type=SSE,
        headers=STREAM_HEADERS,
        delay_ms=delay,
        drop_after=cfg["drop_after_chunks"],
        closing=host.closing,
        abandoned=host.stream_abandoned,
    )
