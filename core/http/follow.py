"""Answering a request by following the identical one in flight (:mod:`core.http.flight`).

In the same stream mode, the follower is sent the answer live: what has arrived so far at once, then
each part as it comes (an OpenAI stream without the usage its leader's call asked for, when the follower did
not ask for it). In the other mode it waits for the whole answer and is sent it converted, as a
hit on a stored entry would be (a streamed answer merged into one, or a stream synthesised from a
whole one). An error answer is passed on as the upstream gave it; a call that ends without any answer
(the proxy stopping, a fault) is a 502 in the route's own format.
"""

from __future__ import annotations

import asyncio

from core.cache.request.errors import error_body
from core.http.flight import Flight, is_last, with_headers
from core.http.relay import ClientWatch, Receive
from core.http.replay import Headers, replay, send_whole
from core.http.upstream import Send
from core.http.usage_relay import hiding_usage

NO_ANSWER = "ollacache: the identical request this one was sharing ended without an answer"


async def follow(
    flight: Flight,
    send: Send,
    receive: Receive,
    *,
    streamed: bool,
    api: str,
    extra: Headers,
    include_usage: bool = False,
) -> int | None:
    """Answer one client from ``flight`` in mode ``streamed``, with ``extra`` headers; the status it was
    sent, or None when it left first (the others go on). Returns once the call's answer is judged."""
    watch = ClientWatch(receive)
    watch.start()
    flight.join()
    try:
        if flight.streamed == streamed:
            live = hiding_usage(send) if api == "openai" and flight.usage and not include_usage else send
            status = await _live(flight, live, watch, extra)
        else:
            status = await _converted(flight, send, receive, watch, streamed, extra, include_usage)
        if not status:
            status = 502
            watch.finishing()
            await send_whole(send, status, error_body(api, NO_ANSWER), extra)
        await flight.wait_end()
    except asyncio.CancelledError:
        if not watch.took_back():
            raise
        return None
    finally:
        watch.stop()
        flight.leave()
    return status


async def _live(flight: Flight, send: Send, watch: ClientWatch, extra: Headers) -> int:
    """Send the flight's messages as they come; the status sent, 0 when it ended without starting one."""
    status, seen = 0, 0
    while not (seen and is_last(flight.messages[seen - 1])):
        await flight.wait_past(seen)
        batch = flight.messages[seen:]
        if not batch:  # the call ended without a whole answer
            break
        seen += len(batch)
        for message in batch:
            if message["type"] == "http.response.start":
                status = message["status"]
            elif is_last(message):
                watch.finishing()
            await send(with_headers(message, extra))
    return status


async def _converted(
    flight: Flight,
    send: Send,
    receive: Receive,
    watch: ClientWatch,
    streamed: bool,
    extra: Headers,
    include_usage: bool,
) -> int:
    """Wait for the whole answer and send it in the other mode; an error as it came; 0 for no answer."""
    await flight.wait_end()
    watch.finishing()
    if flight.entry is not None:
        return await replay(send, receive, flight.entry, extra, streamed=streamed, include_usage=include_usage)
    if flight.answered and flight.status != 200:  # the upstream's own error, in its own words
        return await _live(flight, send, watch, extra)
    return 0
