"""The engine: the store, stats, proxy and control API put together from the settings.

``Engine`` owns the long-lived parts and the housekeeping loop (saving totals, flushing hit counts);
``core.engine.server`` runs it under uvicorn, and tests can run it in-process the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import httpx

from core import __version__
from core.control import token as tokens
from core.control.api import control_app
from core.cache.diskstore import DiskStore
from core.http.cors import CorsRule
from core.observe.events import EventHub
from core.http.gate import Gate
from core.http.hostcheck import HostRule, is_loopback_bind
from core.cache.hot import HotTier
from core.http.proxy import Proxy
from core.observe.resources import ResourceSampler
from core.engine.startup import Startup
from core.observe.stats import Stats
from core.cache.store import NullStore, Store, StoreError
from core.supervision.process import Supervisor
from core.tuning.in_force import detect_and_recommend
from core.engine.tuning_runs import TuningControl
from core.tuning.recommend import output_settings

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 5.0
STATS_FILE = "stats.json"


class Engine:
    """Everything ``ollacache serve`` runs, built from resolved :class:`Settings`."""

    def __init__(self, startup: Startup) -> None:
        settings = startup.settings
        self.settings = settings
        self.startup = startup
        self.started = time.time()
        self.token = tokens.load_or_create(settings.config_dir)
        cache_dir = settings.cache_dir
        self.url = settings.url  # the address actually bound, once serving (see core.engine.server)
        self.hardware, self.tuning = detect_and_recommend(settings)
        store_error = None
        try:
            self.store: Store = DiskStore(cache_dir, settings["cache.size_limit"])
        except StoreError as error:  # serve as a pass-through rather than not at all
            log.error("%s; serving without a cache", error)
            self.store, store_error = NullStore(str(cache_dir), str(error)), str(error)
        self.stats = Stats(cache_dir / STATS_FILE if store_error is None else None)
        self.sampler = ResourceSampler()
        self.stopping = asyncio.Event()
        host_rule = HostRule() if is_loopback_bind(settings["proxy.host"]) else None
        self.proxy = Proxy(
            upstream=settings["proxy.upstream"], store=self.store, stats=self.stats,
            ttl_s=settings["cache.ttl"], hot=HotTier(0 if store_error else settings["cache.memory_limit"]),
            control=control_app(self), gate=Gate(host_rule, CorsRule(settings["proxy.cors_origins"])),
        )
        self.proxy.store_error = store_error
        if startup.will_start:
            # settings Ollacache applies to the Ollama it runs, and that change answers, are in the key
            self.proxy.key_context = output_settings(self.tuning)
        if settings["tuning.inject_options"]:
            self.proxy.inject_threads = self.tuning.num_thread.value
        self.events = EventHub()
        self.proxy.events = self.events
        self.supervisor = Supervisor(
            manage=settings["ollama.manage"], binary=startup.binary, upstream=settings["proxy.upstream"],
            shown_upstream=self.proxy.shown_upstream, env={**self.tuning.env, **settings["ollama.env"]},
            log_path=startup.log_path,
            on_report=lambda report: self.events.publish(report.name, {
                "message": report.message, "ollama": self.supervisor.to_json()}))
        self.proxy.upstream_note = self.supervisor.note
        self.tuning_control = TuningControl(self)
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.stopping = asyncio.Event()
        self.sampler.sample()  # primes CPU percentages
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())
        await self.supervisor.start()

    async def stop(self) -> None:
        """Finish store writes in flight, save totals and hit counts, close the store."""
        self.stopping.set()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        await self.tuning_control.stop()
        await self.proxy.aclose()
        await self.supervisor.stop()
        self._save()
        self.store.close()

    async def _keep_house(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), HOUSEKEEPING_S)
                return
            except TimeoutError:
                pass
            try:
                await self.stats.save_async()
                await asyncio.to_thread(self.store.flush)
            except Exception as error:  # noqa: BLE001 - keep house next time; say what is wrong meanwhile
                log.error("could not save totals or hit counts: %s", error)
                self.proxy.store_error = f"{type(error).__name__}: {error}"

    def _save(self) -> None:
        try:
            self.stats.save()
            self.store.flush()
        except Exception as error:  # noqa: BLE001 - shutting down: report, never hang
            log.error("could not save totals or hit counts: %s", error)

    # --- what the control API reports and does ---------------------------------------------------

    async def health(self) -> dict[str, Any]:
        upstream = self.settings["proxy.upstream"]
        shown = self.proxy.shown_upstream
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                answer = await client.get(f"{upstream}/api/version")
            version = answer.json().get("version") if answer.status_code == 200 else None
            reachable, error = True, None if answer.status_code == 200 else f"HTTP {answer.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as failure:
            reachable, version, error = False, None, f"cannot reach {shown}: {failure or type(failure).__name__}"
        store_error = self.proxy.store_error
        return {
            "status": "ok" if store_error is None and reachable else "degraded",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            "proxy": {"url": self.url, "upstream": shown},
            "store": {"ok": store_error is None, "error": store_error, "location": self.store.location},
            "upstream": {"url": shown, "reachable": reachable, "version": version, "error": error},
            "ollama": self.supervisor.to_json(),
            "takeover": {"on": self.startup.plan.takeover, "reason": self.startup.plan.reason},
        }

    async def snapshot(self) -> dict[str, Any]:
        """Stats, store size and resource use; the blocking reads run off the event loop."""
        entries, volume, resources = await asyncio.to_thread(self._measure)
        snapshot = self.stats.snapshot(entries=entries, bytes_=volume)
        snapshot["resources"] = resources
        snapshot["hot"] = {"entries": len(self.proxy.hot), "bytes": self.proxy.hot.bytes}
        snapshot["ollama"] = self.supervisor.to_json()
        snapshot["tune"] = self.tuning_control.status
        return snapshot

    def _measure(self) -> tuple[int | None, int | None, dict[str, Any]]:
        try:
            entries, volume = self.store.count(), self.store.volume()
        except Exception as error:  # noqa: BLE001 - stats must answer even with a broken store
            self.proxy.store_error = self.proxy.store_error or f"{type(error).__name__}: {error}"
            entries = volume = None
        return entries, volume, self.sampler.sample(trees={"ollama": self.supervisor.pid})

    async def clear(self, model: str | None) -> int:
        removed = await asyncio.to_thread(self.proxy.remove, model=model)
        self.proxy.forget(model=model)
        return removed

    async def delete(self, key: str) -> bool:
        removed = await asyncio.to_thread(self.proxy.remove, key=key)
        self.proxy.forget(key=key)
        return bool(removed)
