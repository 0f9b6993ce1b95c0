"""Warming the cache: a list of requests sent through the proxy's own address, what is cached skipped.

One job at a time (``POST /-/warm``, ``ollacache warm``, the tray app's Cache tab). Each request is looked
up first with the engine's own keys, cache and sampling policy, exactly as the proxy would decide it: one
it would answer from the cache is counted as already cached and not sent. The others go over real HTTP
to the proxy (so they are recorded, stored, counted and shown as any client's), at most ``concurrency`` at
a time. A request fails when the answer is not a 200, or a stream ends with an error in place of its end;
each failure keeps the upstream's status and message.

Progress is in :attr:`Warmup.status` and goes out on the event bus as ``warm_did_progress`` (at most
:data:`PROGRESS_EVERY_S` apart, the latest counts always published) and ``warm_did_finish`` at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections.abc import Callable

import httpx

from core import __version__
from core.cache.request.decision import Outcome, Policy, decide
from core.cache.request.keys import ROUTES
from core.cache.request.per_input import split
from core.cache.request.requests import RequestKeys
from core.cache.storage.layered import LayeredCache
from core.cache.storage.slots import find
from core.control.exchange import _dialable
from core.control.warm import FAILURES_KEPT, WarmItem, WarmStatus
from core.observe.events import EventHub

PROGRESS_EVERY_S = 0.25  # progress events at most this often (the last counts are always sent)
USER_AGENT = f"ollacache-warm/{__version__}"
CONNECT_TIMEOUT_S = 10.0  # a generation may take minutes: only connecting is bounded


class Warmup:
    """The warm-up job of one engine: sends to ``url()`` (the address the proxy is bound to, known once
    it serves), looks up with ``keys`` and ``cache`` under the sampling policy ``policy()``."""

    def __init__(
        self,
        *,
        url: Callable[[], str],
        keys: RequestKeys,
        cache: LayeredCache,
        policy: Callable[[], Policy],
        events: EventHub,
        verify: ssl.SSLContext | bool = True,
        credential: str | None = None,
    ) -> None:
        """``verify``: how the engine's own HTTPS certificate is trusted; ``credential``: what the warm-up's
        requests carry as ``Authorization`` where every client must send a key (the engine's own token)."""
        self.verify = verify
        self.credential = credential
        self.url = url
        self.keys = keys
        self.cache = cache
        self.policy = policy
        self.events = events
        self._status: WarmStatus = {"state": "idle"}
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._published = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._random = random.Random()  # which answer of a full bucket would serve: not the proxy's draw

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def status(self) -> WarmStatus:
        """The counts so far (``elapsed_s`` up to now while running)."""
        status = WarmStatus(**self._status)
        if status["state"] == "running":
            status["elapsed_s"] = round(time.monotonic() - self._started, 3)
        status["failures"] = list(self._status.get("failures", ()))
        return status

    def start(self, items: list[WarmItem], concurrency: int) -> bool:
        """Begin sending ``items`` unless a warm-up runs; returns whether it began."""
        if self.running:
            return False
        self._started = time.monotonic()
        self._status = {
            "state": "running",
            "total": len(items),
            "sent": 0,
            "cached": 0,
            "failed": 0,
            "concurrency": concurrency,
            "elapsed_s": 0.0,
            "failures": [],
        }
        self._task = asyncio.get_running_loop().create_task(self._run(items, concurrency))
        return True

    async def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, items: list[WarmItem], concurrency: int) -> None:
        queue: asyncio.Queue[tuple[int, WarmItem]] = asyncio.Queue()
        for numbered in enumerate(items):
            queue.put_nowait(numbered)
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        try:
            async with httpx.AsyncClient(
                base_url=_dialable(self.url()),  # 0.0.0.0: through loopback
                timeout=timeout,
                limits=limits,
                headers={
                    "user-agent": USER_AGENT,
                    **({"authorization": f"Bearer {self.credential}"} if self.credential else {}),
                },
                verify=self.verify,
            ) as http:
                workers = [asyncio.create_task(self._work(queue, http)) for _ in range(min(concurrency, len(items)))]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for worker in workers:
                        worker.cancel()
        finally:  # ended, stopped with the engine or broken: the status says it is over either way
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self._status["state"] = "done"
            self._status["elapsed_s"] = round(time.monotonic() - self._started, 3)
            self.events.publish("warm_did_finish", dict(self.status))

    async def _work(self, queue: asyncio.Queue[tuple[int, WarmItem]], http: httpx.AsyncClient) -> None:
        while not queue.empty():
            index, item = queue.get_nowait()
            if self.cached(item):
                self._count("cached")
                continue
            error = await self._send(http, item)
            if error is None:
                self._count("sent")
            else:
                model = item["body"].get("model")
                failures = self._status["failures"]
                if len(failures) < FAILURES_KEPT:
                    failures.append(
                        {
                            "index": index,
                            "endpoint": item["endpoint"],
                            "model": model if isinstance(model, str) else "",
                            "error": error,
                        }
                    )
                self._count("failed")

    def cached(self, item: WarmItem) -> bool:
        """Whether the proxy would answer ``item`` from the cache now (as a client without credentials)."""
        route = ROUTES[item["endpoint"]]
        request = self.keys.facts(route, json.dumps(item["body"]).encode(), None)
        if request is None:
            return False
        now = time.time()
        policy = self.policy()
        batch = split(route, item["body"], self.keys.context_for(request.model, None, None)) if request.embeds else None
        try:
            if batch is not None:  # embeddings are stored input by input (or, from before, as the whole batch)
                stored = all(self.cache.lookup(key, now) is not None for key in batch.keys)
                return stored or self.cache.lookup(request.key, now) is not None
            _, found = find(self.cache, policy, request, True, now, self._random)
        except Exception:  # noqa: BLE001 - a store that cannot be read: send it, the proxy answers as it can
            return False
        return decide(request, found, now=now, policy=policy).outcome is Outcome.HIT

    async def _send(self, http: httpx.AsyncClient, item: WarmItem) -> str | None:
        """Send ``item`` through the proxy; ``None`` once answered in full, else what went wrong."""
        try:
            async with http.stream("POST", item["endpoint"], json=item["body"]) as response:
                body = await response.aread()
        except httpx.HTTPError as error:
            return f"no answer from the proxy: {error or type(error).__name__}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {_message(body) or response.reason_phrase}"
        if not response.headers.get("content-type", "").startswith(("application/x-ndjson", "text/event-stream")):
            return None  # a whole answer with status 200 is an answer (a Responses object has "error": null)
        said = _stream_error(body)
        return None if said is None else f"the stream ended with an error: {said}"

    def _count(self, what: str) -> None:
        self._status[what] += 1  # type: ignore[literal-required]
        self._progressed()

    def _progressed(self) -> None:
        """Publish the counts now, or at the end of the current interval if one was just sent."""
        if self._pending is not None:
            return
        wait = self._published + PROGRESS_EVERY_S - time.monotonic()
        if wait <= 0:
            self._publish_progress()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._publish_progress)

    def _publish_progress(self) -> None:
        self._pending = None
        self._published = time.monotonic()
        if self._status["state"] == "running":
            progress = self.status
            del progress["failures"]
            self.events.publish("warm_did_progress", dict(progress))


def _message(body: bytes) -> str:
    """The error an answer carries: Ollama's ``{"error": "..."}``, OpenAI's ``{"error": {"message": ...}}``."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error) if error is not None else ""


def _stream_error(body: bytes) -> str | None:
    """The error a stream ended with in place of its end (an NDJSON line or an SSE event with ``error``)."""
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1].removeprefix(b"data:").strip()
    if last == b"[DONE]" and len(lines) > 1:
        last = lines[-2].removeprefix(b"data:").strip()
    try:
        parsed = json.loads(last)
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("message"), str):
        return parsed["message"] or "unknown error"  # the Responses API's error event
    if isinstance(parsed, dict) and parsed.get("error") is not None:
        return _message(last) or "unknown error"
    return None
