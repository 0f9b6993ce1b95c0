"""Forwarding one request to the upstream and streaming its answer back: the request's body read whole or
streamed through, a flight's followers sent the same messages, the recorder fed, and the proxy's own answer when
the request cannot be sent (400) or the upstream reached (502). What to forward is :mod:`core.http.proxy`'s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from core.cache.request.errors import error_body
from core.cache.request.recorder import Recorder
from core.http.accounts import Accounts, Call
from core.http.flight import Flight
from core.http.relay import ClientWatch, Receive, Scope, Send, request_stream
from core.http.replay import send_whole
from core.http.upstream import Unsendable, Upstream, UpstreamError


@dataclass(frozen=True, slots=True)
class Sent:
    """What forwarding a request gave: the status sent, the upstream's time, when it ended, and whether the
    proxy answered itself because the request could not be forwarded (400) or the upstream reached (502)."""

    status: int
    upstream_s: float
    finished: float
    failed: bool = False


async def forward(
    upstream: Upstream,
    accounts: Accounts,
    scope: Scope,
    receive: Receive,
    send: Send,
    body: bytes | None,
    extra: list[tuple[bytes, bytes]],
    call: Call | None,
    recorder: Recorder | None,
    flight: Flight | None,
) -> Sent | None:
    """Forward the request upstream (``body``, or the client's body streamed when None) and stream the
    answer back with ``extra`` headers, feeding ``recorder``; ``flight`` carries the answer to the identical
    requests that follow this one. What was sent, or None when the client left first."""
    accounts.working += 1  # an upstream call under way: the stats stay live meanwhile
    if call is not None:
        accounts.forwarding(call, recorder.streamed if recorder is not None else None)
    api = call.route.api if call is not None else "ollama"
    try:
        watch = ClientWatch(receive, flight.leader_left if flight is not None else None)
        content: Any = body if body is not None else request_stream(watch, scope, receive)
        if body is not None:
            watch.start()
        request = upstream.request(scope, content, buffered=body is not None)
        started = time.perf_counter()
        if flight is not None:  # the followers are sent the same messages, with headers of their own
            send, extra = flight.tee(send, extra), []
        try:
            response = await upstream.send(request, replayable=not isinstance(content, AsyncIterator))
        except Unsendable as error:
            watch.stop()
            message = f"ollacache: this request cannot be forwarded: {error}"
            await send_whole(send, 400, error_body(api, message), extra)
            return Sent(400, time.perf_counter() - started, time.perf_counter(), failed=True)
        except UpstreamError as error:
            watch.stop()
            await send_whole(send, 502, error_body(api, upstream.unreachable(error)), extra)
            return Sent(502, time.perf_counter() - started, time.perf_counter(), failed=True)
        except asyncio.CancelledError:
            if not watch.took_back():
                raise
            return None
        try:
            await upstream.stream_back(send, response, extra, watch, call.route if call else None, recorder)
        except asyncio.CancelledError:
            if not watch.took_back():
                raise
            return None
        finally:
            watch.stop()
            await response.aclose()
        finished = time.perf_counter()
        return Sent(response.status_code, finished - started, finished)
    finally:
        accounts.working -= 1
