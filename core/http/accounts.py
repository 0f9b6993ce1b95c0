"""The one account of each request on a cached route: what the proxy knows of it while it runs (:class:`Call`),
and at its end its stats and its ``request_did_finish`` on ``/-/events`` (never its prompt or answer).

A forwarded request is also told when it starts (``request_did_start``, with an id its finish carries), so a
long generation shows while it runs; the id lives in a context variable, as each request is one task of its own.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

from core.cache.request.decision import Outcome, Request
from core.cache.request.keys import Route
from core.http.relay import Receive, Scope, Send
from core.observe.events import EventHub
from core.observe.stats import Stats

# the request a task is forwarding: its event id and whether it streams
_FORWARDED: ContextVar[tuple[int | None, bool | None]] = ContextVar("forwarded", default=(None, None))
_SAVES = frozenset({"hit", "shared"})  # the outcomes whose tokens Ollama did not have to generate again


@dataclass(slots=True)
class Call:
    """One request on a cached route as the proxy handles it: the ASGI triple, what was read of it, and the key
    it is answered or recorded under (a slot's under a bucket policy)."""

    scope: Scope
    receive: Receive
    send: Send
    route: Route
    body: bytes
    client: str
    started: float
    cors: list[tuple[bytes, bytes]]
    request: Request | None = None
    key: str = ""
    key_name: str | None = None  # the install's API key it came with (a shared proxy), by name


class Accounts:
    """Counts finished requests in ``stats`` and tells ``events``' subscribers of them."""

    def __init__(self, stats: Stats, events: EventHub) -> None:
        self.stats = stats
        self.events = events
        self.working = 0  # requests being forwarded upstream now (a generation can last minutes)

    def forwarding(self, call: Call, streamed: bool | None) -> None:
        """``call`` is going upstream (``streamed``: how it is recorded, None when it is not): told now, in
        case it runs past the next batch of finished requests."""
        if self.events and _FORWARDED.get()[0] is None:  # a request that goes upstream twice is one row
            model = call.request.model if call.request is not None else None
            _FORWARDED.set(
                (
                    self.events.request_started(
                        {
                            "time": time.time(),
                            "client": call.client,
                            "model": model,
                            "route": call.route.path,
                            "streamed": streamed,
                        }
                    ),
                    streamed,
                )
            )

    def finished(
        self,
        call: Call,
        outcome: Outcome,
        kind: str,
        status: int,
        *,
        tokens: int | None = None,
        saved_s: float = 0.0,
        latency: bool = True,
        upstream_s: float | None = None,
    ) -> None:
        """The account of a finished request: ``outcome`` as its ``X-Cache`` said; ``kind`` its stats outcome
        (hit, miss, shared, bypass or error); ``status`` 0 for an answer the upstream cut off; ``tokens`` None
        when not known; ``latency`` false for an answer that measured nothing (a refusal, a bypass);
        ``upstream_s`` the upstream's time, which a forwarded request's latency is."""
        took_s = time.perf_counter() - call.started
        request = call.request
        model = request.model if request is not None else None
        latency_s = (upstream_s if upstream_s is not None else took_s) if latency else None
        self.stats.record(
            kind,
            route=call.route.path,
            model=model,
            latency_s=latency_s,
            saved_s=saved_s,
            saved_tokens=(tokens or 0) if kind in _SAVES else 0,
            client=call.client,
            key=call.key_name,
        )
        if self.events:
            forwarded, streamed_up = _FORWARDED.get()
            self.events.request_finished(
                {
                    "time": time.time(),
                    "client": call.client,
                    "model": model,
                    "route": call.route.path,
                    "cache": outcome.value,
                    "status": status,
                    "latency_ms": took_s * 1000.0,
                    "tokens": tokens,
                    "saved_s": saved_s,
                    "id": forwarded,
                    "streamed": request.streamed if request is not None and forwarded is None else streamed_up,
                }
            )
