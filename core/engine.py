"""The engine: the store, stats, proxy and control API put together from the settings.

``Engine`` owns the long-lived parts and the housekeeping loop (saving totals, flushing hit counts);
``core.server`` runs it under uvicorn, and tests can run it in-process the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import httpx

from core import __version__
from core import token as tokens
from core.control import control_app
from core.diskstore import DiskStore
from core.cors import CorsRule
from core.gate import Gate
from core.hostcheck import HostRule, is_loopback_bind
from core.hot import HotTier
from core.proxy import Proxy
from core.resources import ResourceSampler
from core.settings import Settings
from core.stats import Stats
from core.store import Store, StoreError

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 5.0
STATS_FILE = "stats.json"


class Engine:
    """Everything ``ollacache serve`` runs, built from resolved :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.time()
        self.token = tokens.load_or_create(settings.config_dir)
        cache_dir = settings.cache_dir
        self.store: Store = DiskStore(cache_dir, settings["cache.size_limit"])
        self.stats = Stats(cache_dir / STATS_FILE)
        self.sampler = ResourceSampler()
        self.stopping = asyncio.Event()
        host_rule = HostRule() if is_loopback_bind(settings["proxy.host"]) else None
        self.proxy = Proxy(
            upstream=settings["proxy.upstream"], store=self.store, stats=self.stats,
            ttl_s=settings["cache.ttl"], hot=HotTier(settings["cache.memory_limit"]),
            control=control_app(self), gate=Gate(host_rule, CorsRule(settings["proxy.cors_origins"])),
        )
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.stopping = asyncio.Event()
        self.sampler.sample()  # primes CPU percentages
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())

    async def stop(self) -> None:
        """Finish store writes in flight, save totals and hit counts, close the store."""
        self.stopping.set()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        await self.proxy.aclose()
        self._save()
        self.store.close()

    async def _keep_house(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), HOUSEKEEPING_S)
                return
            except TimeoutError:
                pass
            await asyncio.to_thread(self._save)

    def _save(self) -> None:
        try:
            self.stats.save()
            self.store.flush()
        except (OSError, StoreError) as error:
            log.error("could not save totals or hit counts: %s", error)

    # --- what the control API reports and does ---------------------------------------------------

    async def health(self) -> dict[str, Any]:
        upstream = self.settings["proxy.upstream"]
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                answer = await client.get(f"{upstream}/api/version")
            version = answer.json().get("version") if answer.status_code == 200 else None
            reachable, error = True, None if answer.status_code == 200 else f"HTTP {answer.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as failure:
            reachable, version, error = False, None, f"cannot reach {upstream}: {failure or type(failure).__name__}"
        store_error = self.proxy.store_error
        return {
            "status": "ok" if store_error is None and reachable else "degraded",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            "proxy": {"url": self.settings.url, "upstream": upstream},
            "store": {"ok": store_error is None, "error": store_error, "location": self.store.location},
            "upstream": {"url": upstream, "reachable": reachable, "version": version, "error": error},
            "ollama": {"state": "attached" if reachable else "unreachable", "managed": False},
        }

    def snapshot(self) -> dict[str, Any]:
        try:
            entries, volume = self.store.count(), self.store.volume()
        except Exception as error:  # noqa: BLE001 - stats must answer even with a broken store
            self.proxy.store_error = self.proxy.store_error or f"{type(error).__name__}: {error}"
            entries = volume = None
        snapshot = self.stats.snapshot(entries=entries, bytes_=volume)
        snapshot["resources"] = self.sampler.sample()
        snapshot["hot"] = {"entries": len(self.proxy.hot), "bytes": self.proxy.hot.bytes}
        return snapshot

    def clear(self, model: str | None) -> int:
        removed = self.store.clear(model)
        self.proxy.forget(model=model)
        return removed

    def delete(self, key: str) -> bool:
        removed = self.store.delete(key)
        self.proxy.forget(key=key)
        return removed
