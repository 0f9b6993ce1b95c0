"""Forwarding a request whose answer the cache records: the upstream's answer streamed to the client (and to the
identical requests that follow it), judged once complete and stored when it is a whole success.

An OpenAI stream is asked of the upstream with its usage, whoever asked (:mod:`core.cache.request.usage`), and
sent without it to a client that did not ask. Nothing partial or failed is stored, nor anything while caching is
paused, nor an answer a clear or delete overtook on its way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.cache.request.decision import Outcome
from core.cache.request.recorder import Recorder
from core.cache.request.usage import with_usage
from core.cache.storage.layered import LayeredCache
from core.http.accounts import Accounts, Call
from core.http.flight import Flights
from core.http.forwarding import forward
from core.http.upstream import Upstream
from core.http.usage_relay import hiding_usage
from core.observe.events import EventHub

log = logging.getLogger(__name__)


@dataclass
class Recording:
    """What recording needs of the proxy; ``paused`` tells whether caching is paused right now."""

    cache: LayeredCache
    upstream: Upstream
    accounts: Accounts
    flights: Flights
    events: EventHub
    paused: Callable[[], bool]

    async def record(
        self, call: Call, body: bytes, extra: list[tuple[bytes, bytes]], *, ttl_s: float, digest: str
    ) -> None:
        """Forward ``body`` for ``call`` (a miss or refresh) with ``extra`` headers; store its answer if whole
        (``ttl_s``: its lifetime, 0 for ever; ``digest``: the model's build it is recorded with)."""
        request, route = call.request, call.route
        assert request is not None
        # the body as the client sent it is what the entry keeps
        recorder = Recorder(route, request.streamed, call.started, self.cache.generation, call.body)
        usage = route.api == "openai" and request.streamed  # recorded with its usage (core.cache.request.usage)
        send = call.send
        if usage and not request.usage:
            body, send = with_usage(body), hiding_usage(send)
        flight = self.flights.start(call.key, request.streamed, usage)
        try:
            sent = await forward(
                self.upstream, self.accounts, call.scope, call.receive, send, body, extra, call, recorder, flight
            )
            if sent is None:
                return None  # the client left: nothing partial is ever stored, nothing is counted
            if sent.failed:
                return self.accounts.finished(call, Outcome.MISS, "error", sent.status, upstream_s=sent.upstream_s)
            verdict = recorder.verdict()
            entry = None
            if verdict.storable:
                created = time.time()
                entry = recorder.entry(
                    call.key,
                    request.model,
                    verdict,
                    created=created,
                    finished=sent.finished,
                    expires=created + ttl_s if ttl_s else 0.0,
                )
                entry.digest = digest
            flight.entry = entry  # what the followers count as saved
            if entry is None or self.paused():
                log.debug("not storing %s: %s", call.key, "caching is paused" if entry else verdict.reason)
            # not kept when a clear or delete came while this answer was on its way
            elif self.cache.keep(entry, recorder.generation) and self.events:
                self.events.publish("entry_did_store", entry.info())
            # after entry_did_store: a subscriber sees the entry before the request that made it
            self.accounts.finished(
                call,
                Outcome.MISS,
                "miss" if recorder.status == 200 else "error",
                recorder.status,
                tokens=verdict.prompt_tokens + verdict.completion_tokens,
                upstream_s=sent.upstream_s,
            )
        finally:
            flight.end()
        return None
