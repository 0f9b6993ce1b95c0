"""The engine: the store, stats, proxy and control API put together from the settings.

``Engine`` owns the long-lived parts (its housekeeping, saving totals and hit counts, in
:mod:`core.engine.housekeeping`; what it reports, health and stats and their feed on ``/-/events``, in
:mod:`core.engine.reporting`); ``core.engine.server`` runs it under uvicorn, and tests can run it in-process the
same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.access.keyring import KeyRing
from core.access.limits import RateLimit
from core.cache.request.builds import Builds
from core.cache.request.decision import Policy
from core.cache.request.requests import RequestKeys
from core.cache.storage.diskstore import DiskStore
from core.cache.storage.hot import HotTier
from core.cache.storage.layered import LayeredCache
from core.cache.storage.opening import open_store
from core.cache.storage.store import NullStore, SharedStore
from core.config.parsing import redact
from core.control import running
from core.control import token as tokens
from core.control.api import control_app
from core.control.tls import local_verify
from core.control.warm import WarmItem
from core.engine import reconfigure, reporting
from core.engine.entries import Entries
from core.engine.housekeeping import Housekeeping
from core.engine.models import OFFLINE_REFUSAL, Models
from core.engine.startup import Startup
from core.engine.tuning_runs import TuningRuns
from core.engine.warmup import Warmup
from core.http.cors import CorsRule
from core.http.gate import Gate
from core.http.guard import Guard
from core.http.hostcheck import HostRule, is_loopback_bind
from core.http.proxy import Proxy
from core.observe.events import EventHub
from core.observe.resources import ResourceSampler
from core.observe.stats import Stats
from core.supervision.binary import find_ollama
from core.supervision.process import Supervisor
from core.supervision.vocabulary import Report
from core.tuning.in_force import detect_and_recommend, hardware_json, ollama_env
from core.tuning.measure import candidates
from core.tuning.recommend import output_settings

log = logging.getLogger(__name__)
STATS_FILE = "stats.json"


class Engine:
    """Everything ``ollacache serve`` runs, built from the decisions taken at :class:`Startup`.

    Each part is given what it needs when it is built; later changes (a new thread count) go through the
    engine's own methods, which tell each part that owns the value.
    """

    def __init__(self, startup: Startup) -> None:
        settings = startup.settings
        self.settings = settings
        self.startup = startup
        self.started = time.time()
        self.token = tokens.load_or_create(settings.config_dir)
        # Bound to another address than loopback, the control API's reads need the token too.
        self.loopback = is_loopback_bind(settings["proxy.host"])
        self.url = settings.url  # until serving_at tells the address actually bound
        keys_needed = settings["proxy.share"] or settings["proxy.require_key"] == "always"
        limit = RateLimit(settings["proxy.rate_limit"])
        # one ring for the guard and the control API's /-/keys: a key's last use noted by the one shows in the other,
        # and keys can be made before sharing is on
        self.keyring = KeyRing(settings.config_dir)
        self.guard = Guard(self.keyring, settings["proxy.require_key"], limit, self.token) if keys_needed else None
        self.hardware, self.tuning = detect_and_recommend(settings)
        self.store, store_error = open_store(settings)
        usable = not isinstance(self.store, NullStore)  # a Redis not answering yet is used once it does
        self.stats = Stats(settings.cache_dir / STATS_FILE if usable else None)
        self.sampler = ResourceSampler()
        self.listener = reporting.upstream_listener(settings["proxy.upstream"])  # finds an Ollama started elsewhere
        self.events = EventHub()
        self.stopping = asyncio.Event()
        upstream = settings["proxy.upstream"]
        # offline replay: the upstream is never called, so Ollama is neither started nor supervised
        self.offline: bool = settings["proxy.offline"]
        self.supervisor = Supervisor(
            manage="never" if self.offline else settings["ollama.manage"],
            binary=startup.binary,
            upstream=upstream,
            shown_upstream=redact(upstream),
            env=ollama_env(settings, self.tuning),
            log_path=startup.log_path,
            on_report=self._ollama_did,
            find=lambda: find_ollama(settings["ollama.binary"]),
        )
        # no store, or a disk bounded at 0 bytes, keeps nothing: the memory tier must not keep answers either
        keeps = usable and (settings["cache.size_limit"] or not isinstance(self.store, DiskStore))
        memory = settings["cache.memory_limit"] if keeps else 0
        self.cache = LayeredCache(self.store, HotTier(memory), store_error, hits_bytes=settings["cache.hits_limit"])
        # the build of each model is in the key, read from Ollama's model list and kept in the cache directory
        self.builds = Builds(upstream, settings.cache_dir, offline=self.offline)
        # the settings in the environment of an Ollama that Ollacache runs that change answers are in the key, from
        # the moment it runs (see _ollama_did); an Ollama started elsewhere has none that Ollacache knows of
        self.keys = RequestKeys(
            output_settings(ollama_env(settings, self.tuning)) if startup.will_start else None,
            self.builds,
            memo_bytes=settings["cache.memo_limit"],
        )
        self.entries = Entries(self.cache, self.store, self.builds, self.keys)
        self.models = Models(
            settings["proxy.upstream"],
            self.offline,
            self.entries.count_by_model,
            lambda: reporting.ollama_process(self).pid,  # for the resident memory of its runners
        )
        self.proxy = Proxy(
            upstream=upstream,
            cache=self.cache,
            keys=self.keys,
            stats=self.stats,
            ttl_s=settings["cache.ttl"],
            control=control_app(self),
            gate=Gate(HostRule() if self.loopback else None, CorsRule(settings["proxy.cors_origins"])),
            events=self.events,
            upstream_state=self.supervisor,
            inject_threads=self.tuning.num_thread.value if settings["tuning.inject_options"] else None,
            start_wait_s=settings["ollama.start_wait"],
            policy=Policy(settings["cache.sampling"], settings["cache.bucket"]),
            offline=self.offline,
            guard=self.guard,
        )
        self.tuning_runs = TuningRuns(
            upstream=upstream,
            candidates=candidates(self.hardware),
            config_dir=settings.config_dir,
            events=self.events,
            apply_threads=self.apply_threads,
        )
        self.warmup = Warmup(
            url=lambda: self.url,
            keys=self.keys,
            cache=self.cache,
            policy=lambda: self.proxy.policy,
            events=self.events,
            verify=local_verify(settings["proxy.tls_cert"]),
            credential=self.token if self.guard is not None and self.guard.require == "always" else None,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.housekeeping = Housekeeping(self.cache, self.store, self.stats, self.guard.keyring if self.guard else None)

    def serving_at(self, url: str) -> None:
        """The address actually bound (port takeover, ``--port 0``): reported on health, and written to
        running.json for the CLI and the desktop app."""
        self.url = url
        running.write_url(self.settings.config_dir, url)

    def _ollama_did(self, report: Report) -> None:
        serving = {"ollama_did_spawn": output_settings(self.supervisor.env), "ollama_did_attach": {}}.get(report.name)
        if serving is not None and serving != self.keys.context:  # the keys follow the Ollama that answers
            self.keys.use_context(serving)
            self.cache.generation += 1  # a request keyed before must not store the new Ollama's answer under its key
        if report.name in ("ollama_did_become_healthy", "ollama_did_attach") and not self.stopping.is_set():
            # its builds go in the keys at once
            reading = asyncio.get_running_loop().create_task(self.builds.reread())
            self._tasks.append(reading)
            reading.add_done_callback(self._tasks.remove)
        self.events.publish(report.name, {"message": report.message, "ollama": self.supervisor.to_json()})

    def store_health(self) -> dict[str, Any]:
        error = self.cache.error
        return {"ok": error is None, "error": error, "location": self.store.location}

    def _store_did(self, error: str | None) -> None:
        """Tell subscribers the store failed (the proxy passes everything through) or works again."""
        self.events.publish("store_did_fail" if error else "store_did_recover", {"store": self.store_health()})

    async def start(self) -> None:
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.cache.on_error = lambda error: loop.call_soon_threadsafe(self._store_did, error)
        if isinstance(self.store, SharedStore):  # another proxy's deletes and clears reach this memory tier
            self.store.listen(lambda key, model: _call_soon(loop, self._removed_elsewhere, key, model))
        self.housekeeping.start()
        self._tasks = [loop.create_task(reporting.feed_events(self))]
        self.builds.start()
        if not self.offline:
            await self.supervisor.start()

    def _removed_elsewhere(self, key: str | None, model: str | None) -> None:
        """Another proxy on the shared store deleted ``key`` or cleared ``model`` (both ``None``: everything):
        drop it from the memory tier, and store no answer to a request that began before (as for a local clear)."""
        self.cache.generation += 1
        self.cache.forget(key, model)

    async def stop(self) -> None:
        """Finish store writes in flight, save totals and hit counts, close the store."""
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.builds.stop()
        await self.tuning_runs.stop()
        await self.warmup.stop()
        await self.proxy.aclose()
        await self.supervisor.stop()
        await self.housekeeping.stop()
        self.store.close()

    # --- what the control API reports and does ---------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """``/-/health`` (see :func:`core.engine.reporting.health`)."""
        return await reporting.health(self)

    async def snapshot(self) -> dict[str, Any]:
        """Stats, store size and resource use (see :func:`core.engine.reporting.snapshot`)."""
        return await reporting.snapshot(self)

    def start_warmup(self, items: list[WarmItem], concurrency: int) -> str | None:
        """Send ``items`` through the proxy, skipping what is cached (see :mod:`core.engine.warmup`); the
        reason it cannot start, otherwise."""
        if self.proxy.paused:
            return "caching is paused: resume it first, or every request would pass through uncached"
        if not self.warmup.start(items, concurrency):
            return "a warm-up is already running"
        return None

    def hardware_json(self) -> dict[str, Any]:
        """The detected hardware and the tuning in force (the document of ``ollacache hardware --json``)."""
        return hardware_json(self.hardware, self.tuning)

    async def restart_ollama(self) -> str | None:
        """Restart the Ollama that Ollacache started; the reason it cannot, otherwise."""
        if self.offline:
            return OFFLINE_REFUSAL
        return await self.supervisor.restart()

    def ollama_json(self) -> dict[str, Any]:
        return self.supervisor.to_json()

    async def apply_threads(self, num_thread: int) -> dict[str, Any]:
        """Use ``num_thread`` from now on (see :func:`core.engine.reconfigure.apply_threads`)."""
        return await reconfigure.apply_threads(self, num_thread)

    def settings_table(self) -> dict[str, Any]:
        """``GET /-/settings`` (see :func:`core.engine.reconfigure.settings_table`)."""
        return reconfigure.settings_table(self)

    async def update_settings(self, changes: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """``PUT /-/settings`` (see :func:`core.engine.reconfigure.update_settings`)."""
        return await reconfigure.update_settings(self, changes, dry_run)

    # --- for the tray: pausing the cache, Ollama's models, starting and stopping it, its log ----
    # Pausing lasts as long as this engine: a new engine caches as its settings say.

    def request_stop(self) -> None:
        """Stop serving as SIGTERM does (the server sees ``stopping``): the control API's shutdown."""
        self.stopping.set()

    def pause(self) -> dict[str, Any]:
        """Pass every cached-route request through until :meth:`resume`; ``cache_did_pause`` on a change."""
        changed = self.proxy.pause()
        if changed:
            log.info("caching paused: every request passes through")
            self.events.publish("cache_did_pause", {"paused": True})
        return {"paused": True, "changed": changed}

    def resume(self) -> dict[str, Any]:
        """Cache again after :meth:`pause`; ``cache_did_resume`` on a change."""
        changed = self.proxy.resume()
        if changed:
            log.info("caching resumed")
            self.events.publish("cache_did_resume", {"paused": False})
        return {"paused": False, "changed": changed}

    async def stop_ollama(self) -> str | None:
        """Stop the Ollama that Ollacache runs and keep it stopped; the reason it cannot, otherwise."""
        if self.offline:
            return OFFLINE_REFUSAL
        return await self.supervisor.stop_by_user()

    async def start_ollama(self) -> str | None:
        """Start the Ollama that Ollacache runs (after a stop or a failure); the reason it cannot, otherwise."""
        if self.offline:
            return OFFLINE_REFUSAL
        return await self.supervisor.start_by_user()

    async def ollama_log(self, lines: int) -> dict[str, Any]:
        """The last ``lines`` lines of the log of the Ollama Ollacache runs (none when there is no log)."""
        return {"path": str(self.supervisor.log_path), "lines": await self.supervisor.log_lines(lines)}


def _call_soon(
    loop: asyncio.AbstractEventLoop,
    forget: Callable[[str | None, str | None], None],
    key: str | None,
    model: str | None,
) -> None:
    """Hand an announcement heard in the store's thread to the event loop (none once the loop is closed)."""
    try:
        loop.call_soon_threadsafe(forget, key, model)
    except RuntimeError:
        pass  # shutting down
