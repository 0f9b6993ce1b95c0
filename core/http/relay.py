"""The plumbing of relaying HTTP through the proxy: headers, request bodies, and noticing a client leave."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP libraries on each side set themselves.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
    }
)
# Origin is not forwarded: the proxy answers CORS itself (core.http.cors), so the upstream's own rule and
# its access-control-* headers never interfere.
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"origin"}
_NOT_RETURNED = HOP_BY_HOP | {b"date", b"server"}


def forward_headers(headers: Iterable[tuple[bytes, bytes]], buffered: bool) -> list[tuple[bytes, bytes]]:
    """The client's headers as sent upstream.

    For a body the proxy has read whole (``buffered``), the length is recomputed by the client
    library and the answer is asked for without compression, so it can be parsed and recorded.
    """
    dropped = _NOT_FORWARDED | {b"content-length", b"accept-encoding"} if buffered else _NOT_FORWARDED
    # Values are trimmed: the server side accepts "Bearer " (an empty API key), the client library not.
    forwarded = [(name, value.strip(b" \t")) for name, value in headers if name.lower() not in dropped]
    if buffered:
        forwarded.append((b"accept-encoding", b"identity"))
    return forwarded


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers as returned to the client (the server adds its own date)."""
    return [
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in _NOT_RETURNED and not name.lower().startswith(b"access-control-")
    ]


async def read_body(receive: Receive) -> bytes:
    """The whole request body, held once in memory.

    A body in one message is returned as it came. A longer one (an image in base64) is written into one
    growing buffer whose bytes are then handed over without a copy (`io.BytesIO.getvalue`), so reading
    it needs about its own size, not twice that for the chunks and their join.
    """
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    buffer = io.BytesIO()
    buffer.write(body)
    while message.get("more_body"):
        message = await receive()
        buffer.write(message.get("body", b""))
    return buffer.getvalue()


class ClientWatch:
    """Cancels the task relaying a request when its client disconnects.

    Once the request body has been read, the only message ASGI can still deliver is
    ``http.disconnect``: either the client left, or the response is complete. :meth:`finishing` marks
    the latter before the last byte is sent, so only a real departure sets :attr:`gone` and cancels.
    ``on_gone``, when given, is asked first: it returns True when the task is to go on without its
    client (an upstream call that other clients follow).
    """

    def __init__(self, receive: Receive, on_gone: Callable[[], bool] | None = None) -> None:
        self._receive = receive
        self._on_gone = on_gone
        self._target = asyncio.current_task()
        self._task: asyncio.Task[None] | None = None
        self._finishing = False
        self.gone = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._finishing and self._target is not None:
            self.gone = True
            if self._on_gone is None or not self._on_gone():
                self._target.cancel()

    def left(self) -> None:
        """The client disconnected while its body was being read: cancel the relaying task, unless the body
        is read in that task itself (then the ``CancelledError`` its reader raises is the cancel)."""
        self.gone = True
        if self._target is not None and self._target is not asyncio.current_task():
            self._target.cancel()

    def took_back(self) -> bool:
        """Asked on a ``CancelledError``: whether this watch caused it (the client left). If so the
        cancellation is taken back (``Task.uncancel``) so the relay can end quietly; if not, the caller re-raises it."""
        if self.gone:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return self.gone

    def finishing(self) -> None:
        self._finishing = True

    def stop(self) -> None:
        self._finishing = True
        if self._task is not None:
            self._task.cancel()


def request_stream(
    watch: ClientWatch, scope: MutableMapping[str, Any], receive: Receive
) -> AsyncIterator[bytes] | None:
    """The client's request body as an async stream, or ``None`` when the request has none.

    When the stream ends, ``watch`` starts listening for the client leaving.
    """
    headers = dict(scope["headers"])
    if b"content-length" not in headers and b"transfer-encoding" not in headers:
        watch.start()
        return None
    if headers.get(b"content-length") == b"0":
        watch.start()
        return None

    async def stream() -> AsyncIterator[bytes]:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                watch.left()
                raise asyncio.CancelledError
            more = message.get("more_body", False)
            if message.get("body"):
                yield message["body"]
        watch.start()

    return stream()


def refreshing(send: Send, refresh: Callable[[], Awaitable[None]]) -> Send:
    """``send`` that, when a successful answer ends, awaits ``refresh`` before sending its last message: a
    client that saw a ``pull`` or ``delete`` finish finds the new model list in force on its next request."""
    status = 0

    async def sending(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body") and 200 <= status < 300:
            await refresh()
        await send(message)

    return sending


def adding_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """``send`` with ``headers`` added to the response start (CORS on control answers)."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return sending
