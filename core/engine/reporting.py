"""What the engine reports: its health (``/-/health``), its stats snapshots (``/-/stats``), and the feed of
those snapshots to ``/-/events`` subscribers, slower while nothing happens.

The functions take the engine as :class:`Reported`: the parts of it they read.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from core import __version__
from core.cache.request.builds import Builds
from core.cache.request.requests import RequestKeys
from core.cache.storage.layered import LayeredCache
from core.cache.storage.store import Store
from core.config.settings import Settings
from core.engine.startup import Startup, is_local
from core.engine.tuning_runs import TuningRuns
from core.engine.warmup import Warmup
from core.http.proxy import Proxy
from core.observe.events import EventHub
from core.observe.listener import Found, Listener
from core.observe.resources import ResourceSampler
from core.observe.stats import Stats
from core.ollama.client import OllamaError
from core.ollama.client import version as ollama_version
from core.supervision.process import Supervisor

EVENT_INTERVAL_S = 1.0  # seconds between stats snapshots on /-/events
QUIET_EVENT_INTERVAL_S = 5.0  # ... once nothing has happened for QUIET_AFTER_S (well inside a client's read timeout)
QUIET_AFTER_S = 10.0
EVENT_SLACK_S = 0.05  # a tick that wakes a little early still publishes


class Reported(Protocol):
    """What the reports read of the engine."""

    settings: Settings
    startup: Startup
    started: float
    url: str
    offline: bool
    store: Store
    cache: LayeredCache
    keys: RequestKeys
    builds: Builds
    stats: Stats
    sampler: ResourceSampler
    listener: Listener | None
    events: EventHub
    stopping: asyncio.Event
    supervisor: Supervisor
    proxy: Proxy
    tuning_runs: TuningRuns
    warmup: Warmup

    def store_health(self) -> dict[str, Any]: ...


async def health(engine: Reported) -> dict[str, Any]:
    """``/-/health``: whether the store works and the upstream answers, and what runs where."""
    upstream = engine.settings["proxy.upstream"]
    shown = engine.proxy.shown_upstream
    reachable: bool | None
    if engine.offline:  # the user's choice: the upstream is not asked, and its absence is no fault
        version, reachable, error = None, None, "offline: the upstream is never called"
    else:
        try:
            version, reachable, error = await ollama_version(upstream), True, None
        except OllamaError as failure:  # something that answers with an error is reachable, but not healthy
            reachable, version = failure.status is not None, None
            error = failure.cause if reachable else f"cannot reach {shown}: {failure.cause}"
    store_error = engine.cache.error
    return {
        "status": "ok" if store_error is None and (reachable or engine.offline) else "degraded",
        "paused": engine.proxy.paused,  # the user's choice, so not a degraded state
        "offline": engine.offline,  # likewise: hits served, misses refused, the upstream never called
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.time() - engine.started, 3),
        "proxy": {"url": engine.url, "upstream": shown},
        "store": engine.store_health(),
        "upstream": {"url": shown, "reachable": reachable, "version": version, "error": error},
        "ollama": engine.supervisor.to_json(),
        "takeover": {"on": engine.startup.plan.takeover, "reason": engine.startup.plan.reason},
        "builds": engine.builds.to_json(),  # whether model builds are in the keys, and why not
        "settings_notes": list(engine.settings.notes),  # e.g. a relative path in config.toml, and how it was taken
    }


async def snapshot(engine: Reported) -> dict[str, Any]:
    """Stats, store size and resource use; the blocking reads run off the event loop."""
    entries, volume, resources = await asyncio.to_thread(_measure, engine)
    snapshot = engine.stats.snapshot(entries=entries, bytes_=volume)
    snapshot["resources"] = resources
    snapshot["hot"] = {"entries": len(engine.cache.hot), "bytes": engine.cache.hot.bytes}
    bodies, memo_bytes = engine.keys.remembered
    snapshot["memo"] = {"bodies": bodies, "bytes": memo_bytes}
    snapshot["ollama"] = engine.supervisor.to_json()
    snapshot["tune"] = engine.tuning_runs.status
    warm = engine.warmup.status
    del warm["failures"]  # the counts only: GET /-/warm lists the failures
    snapshot["warm"] = warm
    snapshot["paused"] = engine.proxy.paused
    snapshot["offline"] = engine.offline
    snapshot["store_error"] = engine.cache.error  # the proxy passes everything through meanwhile
    snapshot["takeover"] = {"on": engine.startup.plan.takeover}  # the proxy answers at Ollama's own address
    flights = engine.proxy.flights  # identical requests answered by one upstream call right now
    snapshot["in_flight"] = {"calls": len(flights), "following": flights.following()}
    return snapshot


def _measure(engine: Reported) -> tuple[int | None, int | None, dict[str, Any]]:
    try:
        entries, volume = engine.store.count(), engine.store.volume()
    except Exception as error:  # noqa: BLE001 - stats must answer even with a broken store
        engine.cache.failed(error, keep_first=True)
        entries = volume = None
    found = ollama_process(engine)
    resources = engine.sampler.latest(trees={"ollama": found.pid})
    return entries, volume, {**resources, "ollama_unreadable": found.unreadable} if found.unreadable else resources


def ollama_process(engine: Reported) -> Found:
    """The Ollama process: the one Ollacache runs, else the one serving the upstream address on this machine (an
    Ollama attached to; reading the socket table, so called off the event loop)."""
    if engine.supervisor.pid is not None:
        return Found(pid=engine.supervisor.pid)
    if engine.listener is not None and not engine.offline:
        return engine.listener.current()
    return Found()


async def feed_events(engine: Reported) -> None:
    """One stats snapshot a second for every ``/-/events`` subscriber, taken once for all of them; one
    every :data:`QUIET_EVENT_INTERVAL_S` while no request, event or subscriber came for
    :data:`QUIET_AFTER_S` and none is being answered upstream (a generation keeps the charts live): an idle
    engine then samples /proc and wakes its subscribers 5x less. Ends when the engine is ``stopping``."""
    published = -math.inf
    while not engine.stopping.is_set():
        now = time.monotonic()
        quiet = not engine.proxy.accounts.working and engine.events.quiet_for(now) >= QUIET_AFTER_S
        due = published + (QUIET_EVENT_INTERVAL_S if quiet else EVENT_INTERVAL_S) - EVENT_SLACK_S
        if engine.events and now >= due:
            published = now
            engine.events.publish("stats", await snapshot(engine))
        try:
            await asyncio.wait_for(engine.stopping.wait(), EVENT_INTERVAL_S)
        except TimeoutError:
            pass


def upstream_listener(upstream: str) -> Listener | None:
    """A finder of the process serving ``upstream`` when that is on this machine (for an attached Ollama's
    resource use)."""
    parts = urlsplit(upstream)
    if not is_local(parts.hostname or "") or parts.port is None:
        return None
    return Listener(parts.port)
