"""The caching proxy: a lean ASGI callable in front of Ollama.

Cached routes (``core.cache.request.keys.ROUTES``, POST) are answered from the cache when an entry exists; otherwise
they are forwarded chunk by chunk while a copy is recorded (:mod:`core.http.recording`), which is stored only if
the answer turns out complete. A batch of embeddings is answered input by input (:mod:`core.http.embeddings`).
Every other method and path is relayed untouched, with bodies streamed both ways. ``/-/`` belongs to the control
API. The hit path avoids framework routing and does only what a hit needs: the request's facts
(`core.cache.request.requests`, a memo lookup for a repeated body), a lookup in the layered cache
(`core.cache.storage.layered`), the decision, a send.

The models' builds (`core.cache.request.builds`) are in the keys: a request naming a model the tracker does not know
waits for one read of Ollama's model list before it is keyed, and a ``pull``, ``create``, ``copy`` or ``delete``
passed through successfully has the list read again before its answer ends, so the next request sees the
new build.

What lives here is gathering each request's facts and carrying out the plan made of them; the connection to the
upstream, its waits and retry, and the streaming back are :mod:`core.http.upstream`'s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

from core.cache.entry import Entry
from core.cache.request.controls import ControlsError, parse_controls, parse_namespace
from core.cache.request.decision import ALL, Outcome, Policy
from core.cache.request.errors import error_body
from core.cache.request.keys import ROUTES
from core.cache.request.plan import Act, Plan, plan, plan_passing
from core.cache.request.requests import RequestKeys, credential_of
from core.cache.storage.layered import LayeredCache
from core.cache.storage.slots import find
from core.http.accounts import Accounts, Call
from core.http.cors import CorsRule
from core.http.embeddings import PerInput
from core.http.flight import Flight, Flights, can_follow
from core.http.follow import follow
from core.http.forwarding import forward
from core.http.gate import Gate
from core.http.guard import CONTROL_LOCAL, Guard, Refused
from core.http.inject import with_threads
from core.http.recording import Recording
from core.http.relay import Receive, adding_headers, read_body, refreshing
from core.http.replay import replay, send_json, send_whole
from core.http.upstream import Scope, Send, Upstream, UpstreamState
from core.observe.clients import client_of
from core.observe.events import EventHub
from core.observe.stats import Stats

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Ollama's routes that change which models, or which builds of them, are installed.
CHANGES_MODELS = frozenset({"/api/pull", "/api/create", "/api/copy", "/api/delete"})


class Proxy:
    """The ASGI application serving the proxy port.

    ``ttl_s`` is the lifetime of new entries (0 = forever); ``gate`` refuses requests whose ``Host``
    or ``Origin`` Ollama itself would refuse (403) and supplies the CORS headers; ``policy`` is the
    sampling policy (``cache.sampling``, ``cache.bucket``). ``offline`` (offline replay) serves hits and
    refuses everything else with a 504 in the route's own format, so the upstream is never called.
    """

    def __init__(
        self,
        *,
        upstream: str,
        cache: LayeredCache,
        keys: RequestKeys,
        stats: Stats,
        ttl_s: float,
        control: ASGIApp,
        gate: Gate,
        events: EventHub,
        upstream_state: UpstreamState,
        inject_threads: int | None = None,
        start_wait_s: float = 30.0,
        policy: Policy = ALL,
        offline: bool = False,
        guard: Guard | None = None,
    ) -> None:
        self.cache = cache
        self.guard = guard  # shared, or keys required: who must send an API key
        self.offline = offline
        self.keys = keys
        self.builds = keys.builds  # the models' digests, in the keys and on the entries
        self.stats = stats
        self.ttl_s = ttl_s
        self.control = control
        self.gate = gate
        self.events = events  # entry_did_store and the batches of finished requests go out through it
        self.accounts = Accounts(stats, events)
        # start_wait_s: the longest a request waits for a supervised Ollama that is starting
        self.upstream = Upstream(upstream, upstream_state, start_wait_s)
        self.shown_upstream = self.upstream.shown
        self.client = self.upstream.client  # the connection pool to the upstream
        self.inject_threads = inject_threads  # opt-in: num_thread added to requests that set none
        self.flights = Flights()  # the upstream calls under way, which identical requests follow
        self.recording = Recording(cache, self.upstream, self.accounts, self.flights, events, lambda: self._paused)
        self.per_input = PerInput(cache, keys, self.upstream, self.accounts, events)  # batch embeddings, input by input
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
        local = True if self.guard is None else Guard.local(scope)
        admission = self.gate.admit(scope["headers"], local)
        credential, key_name = admission.credential, None
        if admission.refusal is not None:
            return await send_json(send, 403, {"error": admission.refusal})
        cors = admission.cors
        if admission.origin is not None and scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": CorsRule.preflight(admission.origin)})
            return await send({"type": "http.response.body", "body": b""})
        path: str = scope["path"]
        if self.guard is not None:
            if path.startswith("/-/"):
                if not local:
                    return await send_json(send, 403, {"error": CONTROL_LOCAL})
            else:
                admitted = self.guard.admit(scope, admission, local)
                if isinstance(admitted, Refused):
                    api = route.api if (route := ROUTES.get(path)) is not None else "ollama"
                    extra = [*admitted.headers, *cors]
                    return await send_whole(send, admitted.status, error_body(api, admitted.message), extra)
                if admitted is not None:  # our key, consumed: it keys nothing
                    key_name, credential = admitted, credential_of(None, admission.api_key)
        if path.startswith("/-/"):
            return await self.control(scope, receive, adding_headers(send, cors) if cors else send)
        route = ROUTES.get(path)
        if route is None or scope["method"] != "POST":
            return await self._pass(
                scope,
                receive,
                send,
                cors,
                plan_passing(offline=self.offline, changes_models=path in CHANGES_MODELS and self.builds is not None),
            )
        body = await read_body(receive)
        call = Call(scope, receive, send, route, body, client_of(admission.user_agent), time.perf_counter(), cors)
        call.key_name = key_name
        try:
            controls = parse_controls(admission.cache_control, admission.cache_ttl, admission.cache_replay)
            namespace = parse_namespace(admission.cache_namespace)
        except ControlsError as error:
            return await self._refuse(call, plan(None, api=route.api, controls_error=str(error)))
        request = call.request = self.keys.facts(route, body, credential, namespace)
        if request is not None and self.builds is not None and self.builds.unknown(request.model):
            if self.upstream.state.on_its_way:  # a supervised Ollama that is starting has no model list yet
                await self.upstream.state.wait_ready(self.upstream.start_wait_s)
            await self.builds.learn(request.model)  # its build goes in the key
            request = call.request = self.keys.facts(route, body, credential, namespace)
        caching = not self._paused
        if request is not None and request.embeds and caching and not controls.no_store:
            batch = self.per_input.split(route, body, credential, namespace, request.model)
            if batch is not None:
                return await self.per_input.answer(
                    call,
                    batch,
                    controls,
                    offline=self.offline,
                    ttl_s=controls.ttl_s or self.ttl_s,
                    digest=self._digest(request.model),
                )
        now = time.time()
        found: Entry | None = None
        if request is None or not caching:
            pass
        elif self._plain:  # the default policy: one lookup of the key itself
            call.key = request.key
            found = self.cache.lookup(call.key, now) if controls.looks_up else None
            if found is None and request.legacy_key is not None and controls.looks_up:
                found = self.cache.lookup(request.legacy_key, now)
        else:
            call.key, found = find(self.cache, self.policy, request, controls.looks_up, now, self._random)
        flight = self.flights.get(call.key) if request is not None else None
        flying = flight is not None and request is not None and can_follow(flight, request.streamed, route.api)
        chosen = plan(
            request,
            found,
            api=route.api,
            controls=controls,
            now=now,
            flying=flying,
            caching=caching,
            offline=self.offline,
            policy=self.policy,
            inject=self.inject_threads is not None,
            ttl_s=self.ttl_s,
        )
        act = chosen.act
        if act is Act.ANSWER:
            assert found is not None
            return await self._answer(call, found, controls.paced)
        if act is Act.FOLLOW:
            assert flight is not None
            return await self._follow(call, flight)
        if act is Act.REFUSE:
            return await self._refuse(call, chosen)
        return await self._forward(call, chosen)

    async def _answer(self, call: Call, found: Entry, paced: bool) -> None:
        """Send the stored answer (converted to the request's stream mode when it was recorded in the other)."""
        request = call.request
        assert request is not None
        await replay(
            call.send,
            call.receive,
            found,
            [(b"x-cache", b"HIT"), (b"x-cache-key", found.key.encode()), *call.cors],
            streamed=request.streamed,
            paced=paced,
            include_usage=request.usage,
        )
        self.cache.note_hit(found.key, time.time())
        self.accounts.finished(call, Outcome.HIT, "hit", found.status, tokens=found.tokens, saved_s=found.duration_s)

    async def _follow(self, call: Call, flight: Flight) -> None:
        """Answer from the identical request in flight (:func:`core.http.follow.follow`)."""
        request = call.request
        assert request is not None
        extra = [*call.cors, (b"x-cache", b"SHARED"), (b"x-cache-key", call.key.encode())]
        status = await follow(
            flight,
            call.send,
            call.receive,
            streamed=request.streamed,
            api=call.route.api,
            extra=extra,
            include_usage=request.usage,
        )
        if status is None:
            return None  # the client left: nothing is counted
        entry = flight.entry
        if entry is None:  # the answer in flight was not stored: nothing was saved
            return self.accounts.finished(call, Outcome.SHARED, "error", status, tokens=0)
        return self.accounts.finished(
            call, Outcome.SHARED, "shared", status, tokens=entry.tokens, saved_s=entry.duration_s
        )

    async def _refuse(self, call: Call, chosen: Plan) -> None:
        """An error in the route's format, the upstream never called (offline, only-if-cached, bad controls)."""
        extra = list(call.cors)
        if chosen.outcome is not None:
            extra.append((b"x-cache", chosen.outcome.header))
            if call.request is not None:
                extra.append((b"x-cache-key", call.request.key.encode()))
        await send_whole(call.send, chosen.status, error_body(call.route.api, chosen.message), extra)
        if chosen.outcome is not None:  # a request the cache could not answer: a miss, told as its header says
            self.accounts.finished(call, Outcome.MISS, "miss", chosen.status, latency=False)

    async def _forward(self, call: Call, chosen: Plan) -> None:
        """Forward a cached-route request: recorded and stored once complete (a miss or refresh), or untouched."""
        request, outcome = call.request, chosen.outcome
        assert outcome is not None
        threads = self.inject_threads if chosen.threads else None
        body = with_threads(call.body, threads) if threads is not None else call.body
        extra = [*call.cors, (b"x-cache", outcome.header)]
        if chosen.act is Act.FORWARD or request is None:
            sent = await forward(
                self.upstream, self.accounts, call.scope, call.receive, call.send, body, extra, call, None, None
            )
            if sent is not None:
                kind = "error" if sent.failed else "bypass"
                self.accounts.finished(
                    call, outcome, kind, sent.status, latency=sent.failed, upstream_s=sent.upstream_s
                )
            return None
        extra.append((b"x-cache-key", call.key.encode()))
        await self.recording.record(call, body, extra, ttl_s=chosen.ttl_s, digest=self._digest(request.model))
        return None

    def _digest(self, model: str) -> str:
        """The build of ``model`` its entries are recorded with, as in the keys ("" when not known)."""
        return (self.builds.digest(model) if self.builds is not None else None) or ""

    async def _pass(
        self, scope: Scope, receive: Receive, send: Send, cors: list[tuple[bytes, bytes]], chosen: Plan
    ) -> None:
        """Any other path or method: relayed untouched, bodies streamed both ways (refused while offline)."""
        if chosen.act is Act.REFUSE:
            return await send_whole(send, chosen.status, error_body("ollama", chosen.message), cors)
        if chosen.refresh_models and self.builds is not None:
            send = refreshing(send, self.builds.refresh)
        await forward(self.upstream, self.accounts, scope, receive, send, None, list(cors), None, None, None)
        return None

    async def aclose(self) -> None:
        """Finish the store writes under way, then close the upstream connections."""
        await self.cache.drain()
        await self.upstream.aclose()
