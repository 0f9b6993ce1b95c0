"""The way to the upstream Ollama: one pool of connections, each request's URL kept byte for byte, a
request waiting for a supervised Ollama that is on its way, the one retry of a request that did not reach
it, and the answer streamed back to the client (recorded if asked, a cut-off stream ended with an error in
its own format). What to forward, and what to count and tell of it, is :mod:`core.http.proxy`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import httpx

from core.cache.keys import Route
from core.cache.recorder import Recorder, error_chunk
from core.config.parsing import redact
from core.http.relay import ClientWatch, forward_headers, response_headers

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger(__name__)


class UpstreamState(Protocol):
    """What the proxy may ask about the upstream (the supervisor of Ollama answers it)."""

    def note(self) -> str | None:
        """Why the upstream may be down right now (starting, failed...), or None."""

    @property
    def on_its_way(self) -> bool:
        """Whether a supervised upstream is starting or restarting, so a request had better wait for it."""

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait while it is on its way, at most ``timeout_s`` seconds."""


class Upstream:
    """The upstream at ``url``; ``start_wait_s`` is the longest a request waits for a supervised Ollama
    that is starting. ``shown`` is the address as people may see it (credentials redacted)."""

    def __init__(self, url: str, state: UpstreamState, start_wait_s: float) -> None:
        self.state = state
        self.start_wait_s = start_wait_s
        self.shown = redact(url)
        self._url = httpx.URL(url)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=None, write=None, pool=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )

    def request(self, scope: Scope, content: Any, buffered: bool) -> httpx.Request:
        """The request to send upstream for ``scope``, with ``content`` (bytes read whole when ``buffered``,
        otherwise a stream of the client's body)."""
        return self.client.build_request(scope["method"], self._target(scope),
                                         headers=forward_headers(scope["headers"], buffered), content=content)

    async def send(self, request: httpx.Request, *, replayable: bool) -> httpx.Response:
        """Send ``request`` upstream, once more if the first try failed before it reached the upstream.

        While a supervised Ollama is starting or restarting, the request first waits for it (at most
        ``start_wait_s``). A refused connection (a full listen backlog, Ollama going down) or, for a body
        that can be sent again, a kept-alive connection the upstream had closed, is retried once.
        """
        if self.state.on_its_way:  # tools started at login with us must not see Ollama's first seconds
            await self.state.wait_ready(self.start_wait_s)
        try:
            return await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as error:
            if isinstance(error, httpx.RemoteProtocolError) and not replayable:
                raise
            log.debug("retrying %s once after %s", request.url.path, _cause(error))
        if self.state.on_its_way:  # it went down just now, and supervision is bringing it back
            await self.state.wait_ready(self.start_wait_s)
        return await self.client.send(request, stream=True)

    def unreachable(self, error: httpx.TransportError) -> str:
        """What to tell a client whose request could not reach the upstream: the address, the cause, and
        why the upstream may be down when supervision knows."""
        message = f"ollacache: cannot reach the upstream at {self.shown}: {_cause(error)}"
        if (note := self.state.note()) is not None:
            message += f" ({note})"
        return message

    async def stream_back(self, send: Send, response: httpx.Response, extra: list[tuple[bytes, bytes]],
                          watch: ClientWatch, route: Route | None, recorder: Recorder | None) -> None:
        """Send ``response`` to the client as it arrives, with ``extra`` headers, feeding ``recorder``."""
        if recorder is not None:
            recorder.begin(response.status_code, response.headers.get("content-type", ""))
        headers = response_headers(response.headers.raw) + extra
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_raw():
                if recorder is not None:
                    recorder.feed(chunk, time.perf_counter())
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as error:
            log.warning("upstream %s broke off %s: %s", self.shown, response.request.url.path, error)
            if route is None or not _is_stream(response):
                raise  # not a stream: no way to tell the client in-band, so let the connection drop
            await _end_with_error(send, watch, route, recorder, f"ollacache: the upstream at "
                                  f"{self.shown} closed the stream before it finished")
            return
        except asyncio.CancelledError:
            # the client left (nothing to tell), or serving stops and its grace period ran out
            if not watch.gone and route is not None and _is_stream(response):
                await _end_with_error(send, watch, route, recorder, "ollacache: the proxy is shutting down; "
                                      "this answer was cut off before it finished")
            raise
        watch.finishing()
        await send({"type": "http.response.body", "body": b""})

    def _target(self, scope: Scope) -> httpx.URL:
        """The upstream URL for a request, its path kept byte for byte (no ``..`` or ``//`` folding)."""
        query: bytes = scope.get("query_string", b"")
        raw = self._url.raw_path.rstrip(b"/") + scope["raw_path"] + (b"?" + query if query else b"")
        return self._url.copy_with(raw_path=raw)

    async def aclose(self) -> None:
        """Close the upstream connections."""
        await self.client.aclose()


async def _end_with_error(send: Send, watch: ClientWatch, route: Route, recorder: Recorder | None,
                          message: str) -> None:
    """End a cut-off stream with an error in its own format, so no client takes it for a whole answer."""
    if recorder is not None:
        recorder.cut()
    watch.finishing()
    await send({"type": "http.response.body", "body": error_chunk(route, message), "more_body": False})


def _cause(error: BaseException) -> str:
    """What went wrong, never empty: an exception without a message is named by its type."""
    return str(error) or type(error).__name__


def _is_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.startswith(("application/x-ndjson", "text/event-stream"))
