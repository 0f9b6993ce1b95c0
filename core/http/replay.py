"""Answering from a stored entry: at once or at the recorded pace, in the stream mode the request asks.

The recorded bytes go out intact (every NDJSON line and SSE event), or the entry converted to the
other stream mode (:func:`core.cache.request.modes.in_mode`). At once, a streamed answer goes out in one write
rather than one per chunk: a client reads the same lines either way, and a 100-chunk answer then takes
~0.15 ms instead of ~1 ms. Paced (``X-Cache-Replay: paced``), each chunk is sent at its offset from the
start of the replay, the recorded pace; a client that leaves meanwhile ends the replay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from core.cache.entry import Entry
from core.cache.request.errors import error_body
from core.cache.request.modes import in_mode
from core.cache.request.wire import Unmergeable
from core.http.relay import ClientWatch, Receive
from core.http.upstream import Send

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


async def replay(
    send: Send,
    receive: Receive,
    entry: Entry,
    extra: Headers,
    *,
    streamed: bool,
    paced: bool = False,
    include_usage: bool = False,
) -> int:
    """Answer from ``entry`` in mode ``streamed``, with ``extra`` headers (CORS, ``X-Cache``, its key); the
    status sent. ``include_usage``: a stream synthesised for an OpenAI request that asked for usage."""
    try:
        answer = in_mode(entry, streamed, include_usage)
    except Unmergeable as error:  # the decision checked it could be; a damaged entry still might not
        log.warning("entry %s could not be converted: %s", entry.key, error)
        message = (
            f"ollacache: the stored answer could not be converted to this stream mode ({error}); "
            "send Cache-Control: no-cache to ask the upstream again"
        )
        api = "openai" if entry.route.startswith("/v1/") else "ollama"
        await send_whole(send, 500, error_body(api, message), extra)
        return 500
    body = b"" if paced else b"".join(answer.chunks)
    length = sum(len(chunk) for chunk in answer.chunks) if paced else len(body)
    headers = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(length).encode()),
        (b"age", str(max(0, int(time.time() - entry.created))).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    if not paced:
        await send({"type": "http.response.body", "body": body})
        return entry.status
    watch = ClientWatch(receive)
    watch.start()
    started = time.perf_counter()
    try:
        for chunk, offset in zip(answer.chunks, answer.offsets_s, strict=False):
            wait = offset - (time.perf_counter() - started)
            if wait > 0:
                await asyncio.sleep(wait)  # the recorded pace
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        watch.finishing()
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        if not watch.took_back():
            raise
    finally:
        watch.stop()
    return entry.status


async def send_whole(send: Send, status: int, body: bytes, extra: Headers | None = None) -> None:
    """A whole JSON answer (an error, a refusal) in two messages."""
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: object) -> None:
    await send_whole(send, status, json.dumps(payload).encode())
