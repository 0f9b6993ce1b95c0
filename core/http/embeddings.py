"""Answering a batch embedding request input by input (:mod:`core.cache.request.per_input` decides the shapes).

Each distinct input's entry is looked up. When all are found the answer is composed from them (``X-Cache: HIT``);
otherwise the upstream is asked, in one call, only for the inputs without one (``PARTIAL`` when some were found,
``MISS`` when none were), each vector is stored as its input's entry, and the answer has every vector at its
input's index. ``X-Cache-Inputs`` says how many inputs were answered from the cache, of all. A request without
duplicates and without any stored input is forwarded as it was sent, and its client gets the upstream's own
answer. An upstream error reaches the client as it came and stores nothing; an answer with the wrong number of
vectors is a 502 and stores nothing. Offline, or with ``only-if-cached``, a batch not wholly stored is a 504.
An input another request is asking the upstream for right now is not asked for again: its vector is awaited
(:mod:`core.http.input_flights`), also offline or with ``only-if-cached``, and a request that needed no call of
its own is ``SHARED``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.cache.entry import Entry
from core.cache.request.controls import Controls
from core.cache.request.decision import Outcome
from core.cache.request.errors import error_body
from core.cache.request.keys import Route
from core.cache.request.per_input import (
    Batch,
    WrongAnswer,
    compose,
    entry_body,
    prompt_tokens,
    split,
    stored_vector,
    vectors,
)
from core.cache.request.requests import RequestKeys
from core.cache.storage.layered import LayeredCache
from core.http.accounts import Accounts, Call
from core.http.input_flights import InputFlights, Vector
from core.http.replay import replay, send_whole
from core.http.upstream import Unsendable, Upstream, UpstreamError
from core.observe.events import EventHub

JSON = {"ollama": "application/json; charset=utf-8", "openai": "application/json"}
NOT_ALL_STORED = "ollacache: not every input of this batch is in the cache, and {why}"


@dataclass
class Miss:
    """A request with inputs not stored: what asking the upstream for them needs, and what its own calls cost and
    said (the last answer's statistics are reported)."""

    call: Call
    batch: Batch
    outcome: Outcome  # as its X-Cache tells it
    extra: list[tuple[bytes, bytes]]  # the headers of any answer it gets
    generation: int
    digest: str
    ttl_s: float
    calls: int = 0
    answer: bytes = b""
    whole: bool = False  # the answer is to the request as it was sent: its client gets it as it came
    said: dict[str, Any] | None = None
    tokens: int = 0
    upstream_s: float = 0.0

    def add(self, answer: bytes, whole: bool, said: dict[str, Any] | None, tokens: int, upstream_s: float) -> None:
        self.calls += 1
        self.answer, self.whole, self.said = answer, whole, said
        self.tokens += tokens
        self.upstream_s += upstream_s


@dataclass
class PerInput:
    """What answering a batch needs of the proxy: the cache, the upstream, the accounts and events."""

    cache: LayeredCache
    keys: RequestKeys
    upstream: Upstream
    accounts: Accounts
    events: EventHub
    flights: InputFlights = field(default_factory=InputFlights)  # inputs asked of the upstream right now

    def split(
        self, route: Route, body: bytes, credential: bytes | None, namespace: str | None, model: str
    ) -> Batch | None:
        """An embedding request split into its inputs, each cached on its own (None: it is cached whole)."""
        try:
            return split(route, json.loads(body), self.keys.context_for(model, credential, namespace))
        except (ValueError, RecursionError):
            return None

    async def answer(
        self, call: Call, batch: Batch, controls: Controls, *, offline: bool, ttl_s: float, digest: str
    ) -> None:
        """Answer ``call`` (an embedding request split into ``batch``) input by input."""
        now = time.time()
        generation = self.cache.generation
        found: list[Entry | None] = [None] * len(batch.unique)
        if controls.looks_up:
            found = [self.cache.lookup(key, now) for key in batch.keys]
            if controls.max_age_s is not None:
                found = [e if e is not None and now - e.created <= controls.max_age_s else None for e in found]
        missing = [i for i, entry in enumerate(found) if entry is None]
        route, model = call.route, str(batch.body.get("model", ""))
        cached = sum(1 for at in batch.at if found[at] is not None)
        request = call.request
        if not cached and controls.looks_up and request is not None and request.key not in batch.keys:
            stored = self.cache.lookup(request.key, now)  # the whole batch, stored before inputs had entries
            if stored is not None and (controls.max_age_s is None or now - stored.created <= controls.max_age_s):
                return await self._answer_whole(call, stored)
        extra = [*call.cors, (b"x-cache-inputs", f"{cached}/{len(batch.inputs)}".encode())]
        if request is not None:  # the batch's own key (explain takes it); each input has its entry's
            extra.append((b"x-cache-key", request.key.encode()))
        if not missing:
            vectors_found = [stored_vector(route, found[at].chunks[0]) for at in batch.at]  # type: ignore[union-attr]
            await send_whole(
                call.send,
                200,
                compose(route, model, vectors_found, None),
                [*_json(route), (b"x-cache", b"HIT"), *extra],
            )
            for entry in found:
                if entry is not None:
                    self.cache.note_hit(entry.key, now)
            saved = sum(entry.duration_s for entry in found if entry is not None)
            tokens = sum(entry.tokens for entry in found if entry is not None)
            return self.accounts.finished(call, Outcome.HIT, "hit", 200, tokens=tokens, saved_s=saved)
        outcome = Outcome.PARTIAL if cached else Outcome.REFRESH if controls.no_cache else Outcome.MISS
        miss = Miss(call, batch, outcome, extra, generation, digest, ttl_s)
        if offline or controls.only_if_cached:  # no call of its own: only inputs in flight may still come
            flying = self.flights.pending(batch.keys, missing)
            got, saved = await self._follow(flying or {}, self._saved(found))
            if flying is None or len(got) < len(missing):
                why = "the proxy is offline (proxy.offline)" if offline else "the request asked only-if-cached"
                extra.append((b"x-cache", outcome.header))
                await send_whole(call.send, 504, error_body(route.api, NOT_ALL_STORED.format(why=why)), extra)
                return self.accounts.finished(call, Outcome.MISS, "miss", 504, latency=False)
        else:
            got, saved = await self._claim_and_fetch(miss, missing, found)
            if got is None:
                return None  # the client was answered with the upstream's error, or is gone
        if miss.whole:
            answer = miss.answer
        else:
            vectors_by_unique = [
                stored_vector(route, entry.chunks[0]) if entry is not None else got[i] for i, entry in enumerate(found)
            ]
            answer = compose(route, model, [vectors_by_unique[at] for at in batch.at], miss.said)
        if miss.calls == 0:  # every missing input came from identical requests in flight
            await send_whole(call.send, 200, answer, [*_json(route), (b"x-cache", b"SHARED"), *extra])
            return self.accounts.finished(call, Outcome.SHARED, "shared", 200, tokens=0, saved_s=saved)
        await send_whole(call.send, 200, answer, [*_json(route), (b"x-cache", outcome.header), *extra])
        self.accounts.finished(call, outcome, "miss", 200, tokens=miss.tokens, upstream_s=miss.upstream_s)

    async def _claim_and_fetch(
        self, miss: Miss, missing: list[int], found: list[Entry | None]
    ) -> tuple[dict[int, bytes] | None, float]:
        """The vectors of the ``missing`` inputs: asked of the upstream for those no other request is asking for,
        awaited for the others (and asked for after all where that other call failed); with the time saved. None
        when the client was answered with the upstream's error, or is gone."""
        claim = self.flights.claim(miss.batch.keys, missing)
        try:
            got: dict[int, bytes] = {}
            if claim.owned:
                whole = len(claim.owned) == len(miss.batch.inputs)  # none stored, in flight or twice: as it was sent
                fetched = await self._fetch(miss, claim.owned, whole)
                self.flights.settle(claim, fetched, miss.upstream_s / len(claim.owned))
                if fetched is None:
                    return None, 0.0
                got.update(zip(claim.owned, fetched, strict=True))
            followed, saved = await self._follow(claim.followed, self._saved(found))
            got.update(followed)
            again = [i for i in claim.followed if i not in got]  # its upstream call failed: ask ourselves
            if again:
                if (fetched := await self._fetch(miss, again, False)) is None:
                    return None, 0.0
                got.update(zip(again, fetched, strict=True))
            return got, saved
        finally:
            self.flights.settle(claim, None)  # whatever it owned and did not settle: its followers ask themselves

    async def _follow(
        self, flying: Mapping[int, asyncio.Future[Vector | None]], saved: float
    ) -> tuple[dict[int, bytes], float]:
        """The vectors other requests in flight got for these inputs (those that got none left out), and ``saved``
        with the upstream time each spared."""
        got: dict[int, bytes] = {}
        for i, pending in flying.items():
            if (vector := await self.flights.follow(pending)) is not None:
                got[i], saved = vector.text, saved + vector.seconds
        return got, saved

    async def _fetch(self, miss: Miss, indices: list[int], whole: bool) -> list[bytes] | None:
        """Ask the upstream for the distinct inputs ``indices`` (``whole``: with the request as it was sent) and
        store each vector as its input's entry; the vectors, in order, or None when the client was answered with
        the upstream's error (or is gone). ``miss`` adds up what the calls cost."""
        call, route = miss.call, miss.call.route
        failed = [*miss.extra, (b"x-cache", miss.outcome.header)]
        body = call.body if whole else miss.batch.upstream_body(indices)
        status, answer, upstream_s = await self._ask(call, body, failed)
        if status is None:
            return None  # the client left, or the upstream could not be reached (the client was told)
        if status != 200:
            self.accounts.finished(call, miss.outcome, "error", status, upstream_s=upstream_s)
            return None
        try:
            got, said = vectors(route, answer, len(indices))
        except WrongAnswer as error:
            message = f"ollacache: the upstream's answer was not kept: {error}"
            await send_whole(call.send, 502, error_body(route.api, message), failed)
            self.accounts.finished(call, miss.outcome, "error", 502, upstream_s=upstream_s)
            return None
        alone = answer if whole and len(indices) == 1 else None  # the upstream's answer to one input, as it came
        tokens = prompt_tokens(route, said)
        self._store(miss, indices, got, alone, tokens, upstream_s)
        miss.add(answer, whole, said, tokens, upstream_s)
        return got

    @staticmethod
    def _saved(found: list[Entry | None]) -> float:
        return sum(entry.duration_s for entry in found if entry is not None)

    async def _answer_whole(self, call: Call, stored: Entry) -> None:
        """Answer from an entry of the whole batch, as a hit on any other route is answered."""
        extra = [(b"x-cache", b"HIT"), (b"x-cache-key", stored.key.encode()), *call.cors]
        status = await replay(call.send, call.receive, stored, extra, streamed=False)
        self.cache.note_hit(stored.key, time.time())
        self.accounts.finished(call, Outcome.HIT, "hit", status, tokens=stored.tokens, saved_s=stored.duration_s)

    async def _ask(self, call: Call, body: bytes, extra: list[tuple[bytes, bytes]]) -> tuple[int | None, bytes, float]:
        """Send ``body`` upstream and read its whole answer: its status (an error answer is passed on to the
        client here; None when nothing more is to be sent), body and the upstream's time."""
        started = time.perf_counter()
        self.accounts.working += 1
        self.accounts.forwarding(call, False)
        try:
            request = self.upstream.request(call.scope, body, buffered=True)
            try:
                response = await self.upstream.send(request, replayable=True)
                try:
                    answer = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
            except Unsendable as error:
                message = f"ollacache: this request cannot be forwarded: {error}"
                await send_whole(call.send, 400, error_body(call.route.api, message), extra)
                self.accounts.finished(call, Outcome.MISS, "error", 400, upstream_s=time.perf_counter() - started)
                return None, b"", time.perf_counter() - started
            except UpstreamError as error:
                await send_whole(call.send, 502, error_body(call.route.api, self.upstream.unreachable(error)), extra)
                self.accounts.finished(call, Outcome.MISS, "error", 502, upstream_s=time.perf_counter() - started)
                return None, b"", time.perf_counter() - started
        finally:
            self.accounts.working -= 1
        upstream_s = time.perf_counter() - started
        if response.status_code != 200:
            kind = response.headers.get("content-type", "application/json")
            await send_whole(call.send, response.status_code, answer, [(b"content-type", kind.encode()), *extra])
        return response.status_code, answer, upstream_s

    def _store(
        self, miss: Miss, missing: list[int], got: list[bytes], alone: bytes | None, tokens: int, upstream_s: float
    ) -> None:
        """Keep each new vector as its input's entry (``alone``: the upstream's answer to one input, as it came)."""
        call, batch, ttl_s = miss.call, miss.batch, miss.ttl_s
        route, model = call.route, call.request.model if call.request is not None else ""
        created = time.time()
        share = upstream_s / len(missing)
        for i, vector in zip(missing, got, strict=True):
            body = alone if alone is not None else entry_body(route, str(batch.body.get("model", "")), vector)
            entry = Entry(
                key=batch.keys[i],
                route=route.path,
                model=model,
                streamed=False,
                content_type=JSON[route.api],
                chunks=[body],
                offsets_s=[share],
                created=created,
                duration_s=share,
                prompt_tokens=tokens if alone is not None else 0,
                expires=created + ttl_s if ttl_s else 0.0,
                request=batch.request_of(i),
            )
            entry.digest = miss.digest
            if self.cache.keep(entry, miss.generation) and self.events:
                self.events.publish("entry_did_store", entry.info())


def _json(route: Any) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", JSON[route.api].encode())]
