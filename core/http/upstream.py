"""The way to the upstream Ollama: one pool of connections, each request's URL kept byte for byte, a
request waiting for a supervised Ollama that is on its way, the one retry of a request that did not reach
it, and the answer streamed back to the client (recorded if asked, a cut-off stream ended with an error in
its own format). What to forward, and what to count and tell of it, is :mod:`core.http.proxy`'s.

The HTTP client is aiohttp's (its C parser, no extra layers: about a fifth of the CPU httpx spends on a request, as
``bench/upstream_clients.py`` measures), behind a small adapter, :class:`UpstreamClient`, whose failures are its
own: :class:`CannotConnect` (nothing took the connection), :class:`Dropped` (a connection closed before or during
the answer), both :class:`UpstreamError`, and :class:`Unsendable` (a request the HTTP library refuses to send); an
answer has ``status_code``, ``headers`` and ``aclose()``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.connector import Connection
from multidict import CIMultiDictProxy
from yarl import URL

from core.cache.request.errors import error_chunk
from core.cache.request.keys import Route
from core.cache.request.recorder import Recorder
from core.config.parsing import redact
from core.http.relay import ClientWatch, Scope, Send, forward_headers, response_headers

log = logging.getLogger(__name__)
KEEPALIVE_S = 5.0  # an idle upstream connection is closed after this long
CONNECT_TIMEOUT_S = 10.0
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
LARGE_BODY = 1 << 20  # a body bigger than this (an image) is sent from a reader, not in one write


def upstream_socket(addr_info: AddrInfoType) -> socket.socket:
    """A socket to the upstream, with TCP_NODELAY: a request or its body is never held back by Nagle's
    algorithm waiting for the upstream's (possibly delayed) ACK."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    if family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _QuickAckResponse(aiohttp.ClientResponse):
    """An answer whose head, once read, is acknowledged at once (TCP_QUICKACK, where the system has it).

    An upstream without TCP_NODELAY that writes its head and its body separately (cpp-httplib servers do)
    holds the body back until the head is acknowledged, and Linux delays that ACK by up to 40 ms while
    it waits for something to send with it: 40 ms added to every such answer, which this removes.
    """

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        started = await super().start(connection)
        if QUICKACK is not None and (transport := connection.transport) is not None:
            if (sock := transport.get_extra_info("socket")) is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
                except OSError:
                    pass
        return started


class UpstreamRequest:
    """One request to send upstream: its method, its URL (the path byte for byte), headers and body (bytes,
    a stream of the client's body, or None)."""

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: URL, headers: list[tuple[str, str]], content: Any) -> None:
        self.method, self.url, self.headers, self.content = method, url, headers, content


class UpstreamResponse:
    """The upstream's answer while it streams: ``status_code``, ``headers`` (and ``raw_headers`` as sent),
    the body as it arrives (:meth:`aiter_raw`, never decoded), :meth:`aclose`."""

    def __init__(self, request: UpstreamRequest, response: aiohttp.ClientResponse) -> None:
        self.request = request
        self.status_code = response.status
        self.headers: CIMultiDictProxy[str] = response.headers
        self.raw_headers: tuple[tuple[bytes, bytes], ...] = response.raw_headers
        self._response = response

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they come; a broken-off answer raises :class:`Dropped`."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as error:
            raise _translated(error) from error

    async def aclose(self) -> None:
        """Give the connection back to the pool, or close it when the answer was not read to its end (so
        an upstream still generating learns that nobody listens)."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class UpstreamClient:
    """The pool of connections to the upstream (opened on the first request, in the serving loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=KEEPALIVE_S, socket_factory=upstream_socket, use_dns_cache=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            response_class=_QuickAckResponse,
            auto_decompress=False,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
            # forward what the client sent, nothing more: no User-Agent, Accept or Accept-Encoding of ours
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send ``request``; returns once the answer's head is in (the body streams from the response)."""
        session = self._session or self._open()
        data = request.content
        if isinstance(data, bytes) and len(data) > LARGE_BODY:  # sent in pieces, a fresh reader for each try
            data = io.BytesIO(data)
        try:
            response = await session.request(
                request.method, request.url, headers=request.headers, data=data, allow_redirects=False
            )
        except (aiohttp.ClientError, OSError) as error:
            raise _translated(error) from error
        except ValueError as error:  # a header or URL the client library refuses to send
            raise Unsendable(str(error)) from error
        return UpstreamResponse(request, response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class UpstreamError(Exception):
    """The upstream could not be reached, or broke off; the message says how."""


class CannotConnect(UpstreamError):
    """Nothing took the connection: refused, unreachable, or no answer within the connect timeout."""


class Dropped(UpstreamError):
    """A connection closed before or during the answer (a kept-alive one the upstream had closed, or the upstream
    going away mid-answer), or the answer could not be read."""


class Unsendable(Exception):
    """The request cannot be sent as it is (a header or URL the HTTP library refuses)."""


def _translated(error: BaseException) -> UpstreamError | Unsendable:
    """An aiohttp failure as the one of ours that means the same."""
    message = str(error)
    if isinstance(error, aiohttp.ClientConnectorError):
        return CannotConnect(message)
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return CannotConnect(message or "timed out connecting to the upstream")
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return Dropped(message or "the upstream closed the connection without answering")
    if isinstance(error, aiohttp.InvalidURL):
        return Unsendable(message)
    return Dropped(message or type(error).__name__)


class UpstreamState(Protocol):
    """What the proxy may ask about the upstream (the supervisor of Ollama answers it)."""

    def note(self) -> str | None:
        """Why the upstream may be down right now (starting, failed...), or None."""

    @property
    def on_its_way(self) -> bool:
        """Whether a supervised upstream is starting or restarting, so a request had better wait for it."""

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait while it is on its way, at most ``timeout_s`` seconds."""

    def upstream_failed(self) -> None:
        """A request could not reach it: look at once (losing Ollama shows within a second)."""


class Upstream:
    """The upstream at ``url``; ``start_wait_s`` is the longest a request waits for a supervised Ollama
    that is starting. ``shown`` is the address as people may see it (credentials redacted)."""

    def __init__(self, url: str, state: UpstreamState, start_wait_s: float) -> None:
        self.state = state
        self.start_wait_s = start_wait_s
        self.shown = redact(url)
        self._url = URL(url)
        self._base = f"{self._url.scheme}://{self._url.raw_authority}{self._url.raw_path.rstrip('/')}"
        self.client = UpstreamClient()

    def request(self, scope: Scope, content: Any, buffered: bool) -> UpstreamRequest:
        """The request to send upstream for ``scope``, with ``content`` (bytes read whole when ``buffered``,
        otherwise a stream of the client's body)."""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in forward_headers(scope["headers"], buffered)
        ]
        return UpstreamRequest(scope["method"], self._target(scope), headers, content)

    async def send(self, request: UpstreamRequest, *, replayable: bool) -> UpstreamResponse:
        """Send ``request`` upstream, once more if the first try failed before it reached the upstream.

        While a supervised Ollama is starting or restarting, the request first waits for it (at most
        ``start_wait_s``). A refused connection (a full listen backlog, Ollama going down) or, for a body
        that can be sent again, a kept-alive connection the upstream had closed, is retried once.
        """
        if self.state.on_its_way:  # tools started at login with us must not see Ollama's first seconds
            await self.state.wait_ready(self.start_wait_s)
        try:
            return await self.client.send(request)
        except UpstreamError as error:
            if isinstance(error, Dropped) and not replayable:
                raise
            if isinstance(error, CannotConnect):  # not there at all: supervision looks now
                self.state.upstream_failed()
            log.debug("retrying %s once after %s", request.url.path, _cause(error))
        if self.state.on_its_way:  # it went down just now, and supervision is bringing it back
            await self.state.wait_ready(self.start_wait_s)
        return await self.client.send(request)

    def unreachable(self, error: UpstreamError) -> str:
        """What to tell a client whose request could not reach the upstream: the address, the cause, and
        why the upstream may be down when supervision knows."""
        message = f"ollacache: cannot reach the upstream at {self.shown}: {_cause(error)}"
        if (note := self.state.note()) is not None:
            message += f" ({note})"
        return message

    async def stream_back(
        self,
        send: Send,
        response: UpstreamResponse,
        extra: list[tuple[bytes, bytes]],
        watch: ClientWatch,
        route: Route | None,
        recorder: Recorder | None,
    ) -> None:
        """Send ``response`` to the client as it arrives, with ``extra`` headers, feeding ``recorder``."""
        if recorder is not None:
            recorder.begin(response.status_code, response.headers.get("content-type", ""))
        headers = response_headers(response.raw_headers) + extra
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_raw():
                if recorder is not None:
                    recorder.feed(chunk, time.perf_counter())
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as error:
            log.warning("upstream %s broke off %s: %s", self.shown, response.request.url.path, error)
            if route is None or not _is_stream(response):
                raise  # not a stream: no way to tell the client in-band, so let the connection drop
            await _end_with_error(
                send,
                watch,
                route,
                recorder,
                f"ollacache: the upstream at {self.shown} closed the stream before it finished",
            )
            return
        except asyncio.CancelledError:
            # the client left (nothing to tell), or serving stops and its grace period ran out
            if not watch.gone and route is not None and _is_stream(response):
                await _end_with_error(
                    send,
                    watch,
                    route,
                    recorder,
                    "ollacache: the proxy is shutting down; this answer was cut off before it finished",
                )
            raise
        watch.finishing()
        await send({"type": "http.response.body", "body": b""})

    def _target(self, scope: Scope) -> URL:
        """The upstream URL for a request, its path kept byte for byte (no ``..`` or ``//`` folding)."""
        query: bytes = scope.get("query_string", b"")
        raw = scope["raw_path"] + (b"?" + query if query else b"")
        return URL(self._base + raw.decode("latin-1"), encoded=True)

    async def aclose(self) -> None:
        """Close the upstream connections."""
        await self.client.aclose()


async def _end_with_error(
    send: Send, watch: ClientWatch, route: Route, recorder: Recorder | None, message: str
) -> None:
    """End a cut-off stream with an error in its own format, so no client takes it for a whole answer."""
    if recorder is not None:
        recorder.cut()
    watch.finishing()
    sent = recorder.chunks if recorder is not None else ()
    await send({"type": "http.response.body", "body": error_chunk(route, message, sent), "more_body": False})


def _cause(error: BaseException) -> str:
    """What went wrong, never empty: an exception without a message is named by its type."""
    return str(error) or type(error).__name__


def _is_stream(response: UpstreamResponse) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.startswith(("application/x-ndjson", "text/event-stream"))
