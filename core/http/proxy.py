"""The caching proxy: a lean ASGI callable in front of Ollama.

Cached routes (``core.cache.keys.ROUTES``, POST) are answered from the cache when an entry exists; otherwise
they are forwarded chunk by chunk while a :class:`~core.cache.recorder.Recorder` keeps a copy, which is
stored only if the answer turns out complete. Every other method and path is relayed untouched, with
bodies streamed both ways. ``/-/`` belongs to the control API. The hit path avoids framework
routing and does only what a hit needs: the request's facts (`core.cache.requests`, a memo lookup for a
repeated body), a lookup in the layered cache (`core.cache.layered`), the decision, a send.

The models' builds (`core.cache.builds`) are in the keys: a request naming a model the tracker does not know
waits for one read of Ollama's model list before it is keyed, and a ``pull``, ``create``, ``copy`` or ``delete``
passed through successfully has the list read again before its answer ends, so the next request sees the
new build.

What lives here is routing each request and keeping account of it (stats, ``/-/events``, storing a
recorded answer); the connection to the upstream, its waits and retry, and the streaming back are
:mod:`core.http.upstream`'s.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import httpx

from core.cache.controls import ControlsError, parse_controls, parse_namespace
from core.cache.decision import ALL, Outcome, Policy, Request, decide
from core.cache.keys import ROUTES, Route
from core.cache.layered import LayeredCache
from core.cache.recorder import Recorder, error_body
from core.cache.requests import RequestKeys
from core.cache.slots import find
from core.http.cors import CorsRule
from core.http.flight import Flight, Flights
from core.http.follow import follow
from core.http.gate import Gate
from core.http.inject import with_threads
from core.http.relay import ClientWatch, Receive, read_body, request_stream
from core.http.replay import replay, send_json, send_whole
from core.http.upstream import Scope, Send, Upstream, UpstreamState
from core.observe.clients import UNKNOWN, client_of
from core.observe.events import EventHub
from core.observe.stats import Stats

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Ollama's routes that change which models, or which builds of them, are installed.
CHANGES_MODELS = frozenset({"/api/pull", "/api/create", "/api/copy", "/api/delete"})

log = logging.getLogger(__name__)
# the request a task is forwarding: its event id and whether it streams (a request is one task of its own)
_FORWARDED: ContextVar[tuple[int | None, bool | None]] = ContextVar("forwarded", default=(None, None))
OFFLINE_MISS = ("ollacache: the proxy is offline (proxy.offline) and this request is not cached; "
                "only cached answers are served, the upstream is never called")
OFFLINE_PASS_THROUGH = ("ollacache: the proxy is offline (proxy.offline): only cached answers to cached routes "
                        "are served, and this request would go to the upstream, which is never called")


class Proxy:
    """The ASGI application serving the proxy port.

    ``ttl_s`` is the lifetime of new entries (0 = forever); ``gate`` refuses requests whose ``Host``
    or ``Origin`` Ollama itself would refuse (403) and supplies the CORS headers; ``policy`` is the
    sampling policy (``cache.sampling``, ``cache.bucket``). ``offline`` (offline replay) serves hits and
    refuses everything else with a 504 in the route's own format, so the upstream is never called.
    """

    def __init__(self, *, upstream: str, cache: LayeredCache, keys: RequestKeys, stats: Stats, ttl_s: float,
                 control: ASGIApp, gate: Gate, events: EventHub, upstream_state: UpstreamState,
                 inject_threads: int | None = None, start_wait_s: float = 30.0, policy: Policy = ALL,
                 offline: bool = False) -> None:
        self.cache = cache
        self.offline = offline
        self.keys = keys
        self.builds = keys.builds  # the models' digests, in the keys and on the entries
        self.stats = stats
        self.ttl_s = ttl_s
        self.control = control
        self.gate = gate
        self.events = events  # entry_did_store and the batches of finished requests go out through it
        # start_wait_s: the longest a request waits for a supervised Ollama that is starting
        self.upstream = Upstream(upstream, upstream_state, start_wait_s)
        self.shown_upstream = self.upstream.shown
        self.client = self.upstream.client  # the connection pool to the upstream
        self.inject_threads = inject_threads  # opt-in: num_thread added to requests that set none
        self.flights = Flights()  # the upstream calls under way, which identical requests follow
        self._paused = False
        self.use_policy(policy)
        self._random = random.Random()  # which answer of a full bucket is served

    @property
    def paused(self) -> bool:
        """Whether the user has paused caching: every cached-route request then passes through."""
        return self._paused

    def pause(self) -> bool:
        """Pass every cached-route request through (``X-Cache: BYPASS``): nothing is looked up, nothing
        stored, answers in flight included. Returns whether this changed anything."""
        changed, self._paused = not self._paused, True
        return changed

    def resume(self) -> bool:
        """Cache again after :meth:`pause`; returns whether this changed anything."""
        changed, self._paused = self._paused, False
        return changed

    def use_policy(self, policy: Policy) -> None:
        """A new sampling policy (``cache.sampling``, ``cache.bucket``): in force from the next request on."""
        self.policy = policy
        self._plain = not policy.special  # the default policy's hit path does nothing more than before

    def use_threads(self, num_thread: int) -> None:
        """A new tuned thread count: injected from now on, if injection is on."""
        if self.inject_threads is not None:
            self.inject_threads = num_thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.control(scope, receive, send)
        admission = self.gate.admit(scope["headers"])
        if admission.refusal is not None:
            return await send_json(send, 403, {"error": admission.refusal})
        cors = admission.cors
        if admission.origin is not None and scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": CorsRule.preflight(admission.origin)})
            return await send({"type": "http.response.body", "body": b""})
        path: str = scope["path"]
        if path.startswith("/-/"):
            return await self.control(scope, receive, _adding(send, cors) if cors else send)
        route = ROUTES.get(path)
        if route is None or scope["method"] != "POST":
            if self.offline:
                return await send_whole(send, 504, error_body("ollama", OFFLINE_PASS_THROUGH), cors)
            if path in CHANGES_MODELS and self.builds is not None:
                send = _refreshing(send, self.builds.refresh)
            await self._relay(scope, receive, send, body=None, route=None, outcome=None, cors=cors)
            return None
        body = await read_body(receive)
        started = time.perf_counter()
        client = client_of(admission.user_agent)
        try:
            controls = parse_controls(admission.cache_control, admission.cache_ttl, admission.cache_replay)
            namespace = parse_namespace(admission.cache_namespace)
        except ControlsError as error:
            return await send_whole(send, 400, error_body(route.api, str(error)), cors)
        request = self.keys.facts(route, body, admission.authorization, namespace)
        if request is not None and self.builds is not None and self.builds.unknown(request.model):
            if self.upstream.state.on_its_way:  # a supervised Ollama that is starting has no model list yet
                await self.upstream.state.wait_ready(self.upstream.start_wait_s)
            await self.builds.learn(request.model)  # its build goes in the key
            request = self.keys.facts(route, body, admission.authorization, namespace)
        caching = not self._paused
        now = time.time()
        if request is None or not caching:
            key, found = "", None
        elif self._plain:  # the default policy: one lookup of the key itself
            key = request.key
            found = self.cache.lookup(key, now) if controls.looks_up else None
        else:
            key, found = find(self.cache, self.policy, request, controls.looks_up, now, self._random)
        flight = self.flights.get(key) if request is not None else None
        flying = flight is not None and request is not None and _shares(flight, request, route)
        decision = decide(request, found, caching=caching, controls=controls, now=now, flying=flying,
                          policy=self.policy)
        if self.offline and decision.outcome is not Outcome.HIT:
            return await self._refuse_offline(send, route, request, client, cors)
        if decision.outcome is Outcome.HIT:
            assert request is not None and found is not None
            await replay(send, receive, found, [(b"x-cache", b"HIT"), (b"x-cache-key", found.key.encode()), *cors],
                         streamed=request.streamed, paced=controls.paced, include_usage=request.usage)
            self.cache.note_hit(key, time.time())
            latency_s = time.perf_counter() - started
            self.stats.record("hit", route=path, model=request.model, latency_s=latency_s,
                              saved_s=found.duration_s, saved_tokens=found.tokens, client=client)
            if self.events:
                self._did_finish(client, request.model, path, Outcome.HIT, found.status, latency_s, found.tokens,
                                 found.duration_s, streamed=request.streamed)
            return None
        if decision.outcome is Outcome.SHARED:
            assert request is not None and flight is not None
            extra = [*cors, (b"x-cache", b"SHARED"), (b"x-cache-key", key.encode())]
            return await self._follow(receive, send, flight, request, route, client, started, extra)
        if decision.outcome is Outcome.UNCACHED:
            assert request is not None
            self.stats.record("miss", route=path, model=request.model, latency_s=None, client=client)
            message = f"ollacache: not in the cache, and the request asked only-if-cached ({decision.reason})"
            extra = [*cors, (b"x-cache", decision.outcome.header), (b"x-cache-key", request.key.encode())]
            return await send_whole(send, 504, error_body(route.api, message), extra)
        if request is None or decision.outcome is Outcome.BYPASS:
            model = request.model if request else None
            self.stats.record("bypass", route=path, model=model, latency_s=None, client=client)
            if request is not None and self.inject_threads is not None and route.api == "ollama":
                body = with_threads(body, self.inject_threads)  # pausing must not change what Ollama runs with
            status = await self._relay(scope, receive, send, body=body, route=route, outcome=decision.outcome,
                                       cors=cors, client=client)
            if self.events and status is not None:
                self._did_finish(client, model, path, decision.outcome, status, time.perf_counter() - started,
                                 None, 0.0)
            return None
        asked = body  # the body as the client sent it is what the entry keeps
        if self.inject_threads is not None and route.api == "ollama":
            body = with_threads(body, self.inject_threads)
        digest = (self.builds.digest(request.model) if self.builds is not None else None) or ""  # as in the key
        recorder = Recorder(route, request.streamed, started, self.cache.generation, asked)
        flight = self.flights.start(key, request.streamed)
        try:
            await self._relay(scope, receive, send, body=body, route=route, outcome=decision.outcome,
                              key=key, recorder=recorder, model=request.model, cors=cors, client=client,
                              ttl_s=controls.ttl_s, flight=flight, digest=digest)
        finally:
            flight.end()

    async def _refuse_offline(self, send: Send, route: Route, request: Request | None, client: str,
                              cors: list[tuple[bytes, bytes]]) -> None:
        """Offline, whatever is not a hit: a 504 in the route's format, as ``only-if-cached`` gets, never a call."""
        model = request.model if request is not None else None
        self.stats.record("miss", route=route.path, model=model, latency_s=None, client=client)
        extra = [*cors, (b"x-cache", b"MISS")]
        if request is not None:
            extra.append((b"x-cache-key", request.key.encode()))
        await send_whole(send, 504, error_body(route.api, OFFLINE_MISS), extra)

    async def _relay(self, scope: Scope, receive: Receive, send: Send, *, body: bytes | None,
                     route: Route | None, outcome: Outcome | None, key: str | None = None,
                     recorder: Recorder | None = None, model: str = "", cors: list[tuple[bytes, bytes]],
                     client: str = UNKNOWN, ttl_s: float | None = None, flight: Flight | None = None,
                     digest: str = "") -> int | None:
        """Forward the request upstream and stream the answer back, recording it if asked.

        ``outcome`` is the cache decision for a cached route (its ``X-Cache`` header), ``None`` elsewhere;
        ``ttl_s`` the lifetime the client gave the entry (``None``: the setting's); ``flight`` carries the
        answer to the identical requests that follow this one; ``digest`` the build of ``model`` its key names.
        Returns the status the client was sent, or None when the client left first.
        """
        self.events.working += 1  # an upstream call under way: the stats stay live meanwhile
        if route is not None and self.events:  # told while it runs, if it runs past the next batch
            streamed = recorder.streamed if recorder is not None else None
            _FORWARDED.set((self.events.request_started({
                "time": time.time(), "client": client, "model": model or None, "route": route.path,
                "streamed": streamed}), streamed))
        try:
            watch = ClientWatch(receive, flight.leader_left if flight is not None else None)
            content: Any = body if body is not None else request_stream(watch, scope, receive)
            if body is not None:
                watch.start()
            request = self.upstream.request(scope, content, buffered=body is not None)
            started = time.perf_counter()
            extra: list[tuple[bytes, bytes]] = list(cors)
            if outcome is not None:
                extra.append((b"x-cache", outcome.header))
                if key:
                    extra.append((b"x-cache-key", key.encode()))
            if flight is not None:  # the followers are sent the same messages, with headers of their own
                send, extra = flight.tee(send, extra), []
            try:
                response = await self.upstream.send(request, replayable=not isinstance(content, AsyncIterator))
            except httpx.LocalProtocolError as error:
                watch.stop()
                message = f"ollacache: this request cannot be forwarded: {error}"
                await send_whole(send, 400, error_body(route.api if route else "ollama", message), extra)
                return 400
            except httpx.TransportError as error:
                watch.stop()
                if route is not None:
                    latency_s = time.perf_counter() - started
                    self.stats.record("error", route=route.path, model=model or None, latency_s=latency_s, client=client)
                    if self.events and recorder is not None:  # a miss (a bypass is told of by the caller)
                        self._did_finish(client, model or None, route.path, Outcome.MISS, 502, latency_s, None, 0.0)
                message = self.upstream.unreachable(error)
                await send_whole(send, 502, error_body(route.api if route else "ollama", message), extra)
                return 502
            except asyncio.CancelledError:
                if not watch.took_back():
                    raise
                return None
            try:
                await self.upstream.stream_back(send, response, extra, watch, route, recorder)
            except asyncio.CancelledError:
                if not watch.took_back():
                    raise
                return None  # the client left: nothing partial is ever stored, nothing is counted
            finally:
                watch.stop()
                await response.aclose()
            if route is not None and recorder is not None and key is not None:
                self._finish_miss(route, key, model, recorder, started, client, ttl_s, flight, digest)
            return response.status_code
        finally:
            self.events.working -= 1

    def _finish_miss(self, route: Route, key: str, model: str, recorder: Recorder, started: float,
                     client: str, ttl_s: float | None = None, flight: Flight | None = None,
                     digest: str = "") -> None:
        finished = time.perf_counter()
        verdict = recorder.verdict()
        outcome = "miss" if recorder.status == 200 else "error"
        self.stats.record(outcome, route=route.path, model=model or None, latency_s=finished - started, client=client)
        entry = None
        if verdict.storable:
            created, lifetime = time.time(), ttl_s or self.ttl_s
            entry = recorder.entry(key, model, verdict, created=created, finished=finished,
                                   expires=created + lifetime if lifetime else 0.0)
            entry.digest = digest
        if flight is not None:
            flight.entry = entry  # what the followers count as saved
        if entry is None or self._paused:
            log.debug("not storing %s: %s", key, "caching is paused" if entry else verdict.reason)
        # not kept when a clear or delete came while this answer was on its way
        elif self.cache.keep(entry, recorder.generation) and self.events:
            self.events.publish("entry_did_store", entry.info())
        if self.events:  # after entry_did_store: a subscriber sees the entry before the request that made it
            self._did_finish(client, model or None, route.path, Outcome.MISS, recorder.status, finished - started,
                             verdict.prompt_tokens + verdict.completion_tokens, 0.0)

    async def _follow(self, receive: Receive, send: Send, flight: Flight, request: Request, route: Route,
                      client: str, started: float, extra: list[tuple[bytes, bytes]]) -> None:
        """Answer from the identical request in flight (:func:`core.http.follow.follow`), and count it."""
        status = await follow(flight, send, receive, streamed=request.streamed, api=route.api, extra=extra,
                              include_usage=request.usage)
        if status is None:
            return None  # the client left: nothing is counted
        entry, latency_s = flight.entry, time.perf_counter() - started
        saved_s, tokens = (entry.duration_s, entry.tokens) if entry is not None else (0.0, 0)
        self.stats.record("shared" if entry is not None else "error", route=route.path, model=request.model,
                          latency_s=latency_s, saved_s=saved_s, saved_tokens=tokens, client=client)
        if self.events:
            self._did_finish(client, request.model, route.path, Outcome.SHARED, status, latency_s, tokens, saved_s,
                             streamed=request.streamed)
        return None

    def _did_finish(self, client: str, model: str | None, route: str, cache: Outcome, status: int,
                    latency_s: float, tokens: int | None, saved_s: float, streamed: bool | None = None) -> None:
        """Tell ``/-/events`` subscribers of one finished request on a cached route (never its prompt or answer).

        ``status`` is 0 for an answer the upstream cut off; ``tokens`` is None when not known (a bypass).
        Callers check ``self.events`` first, so nothing is built while nobody listens.
        """
        forwarded, streamed_up = _FORWARDED.get()  # set by _relay for a request it forwarded
        self.events.request_finished({
            "time": time.time(), "client": client, "model": model, "route": route, "cache": cache.value,
            "status": status, "latency_ms": latency_s * 1000.0, "tokens": tokens, "saved_s": saved_s,
            "id": forwarded, "streamed": streamed if streamed is not None else streamed_up})

    async def aclose(self) -> None:
        """Finish the store writes under way, then close the upstream connections."""
        await self.cache.drain()
        await self.upstream.aclose()


def _shares(flight: Flight, request: Request, route: Route) -> bool:
    """Whether ``request`` can follow ``flight``: in the same mode always; a whole answer serves a stream
    too, and a stream a whole request when it can be merged (an OpenAI stream only with its usage)."""
    return flight.streamed == request.streamed or not flight.streamed or route.api == "ollama" or request.usage


def _refreshing(send: Send, refresh: Callable[[], Awaitable[None]]) -> Send:
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


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """``send`` with ``headers`` added to the response start (CORS on control answers)."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return sending
