"""What the control API does with the stored entries: list the newest, delete one, clear all or a model's, the
stale ones or those older than an age, and explain why a request misses. The store is read and written off the
event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.cache.entry import Entry
from core.cache.request.builds import Builds, BuildsUnknown, is_stale
from core.cache.request.explain import ask, compare
from core.cache.request.requests import RequestKeys
from core.cache.storage.layered import LayeredCache
from core.cache.storage.store import NullStore, Store


class Entries:
    """The entries of ``store``, as ``cache`` (its memory tier in front) serves them; ``builds`` tells the
    stale ones, ``keys`` keys a request as the proxy does."""

    def __init__(self, cache: LayeredCache, store: Store, builds: Builds, keys: RequestKeys) -> None:
        self.cache, self.store, self.builds, self.keys = cache, store, builds, keys

    async def recent(self, limit: int, model: str | None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.recent, limit, model)

    async def delete(self, key: str) -> bool:
        removed = await asyncio.to_thread(self.cache.remove, key=key)
        self.cache.forget(key=key)
        return bool(removed)

    async def clear(self, model: str | None) -> int:
        removed = await asyncio.to_thread(self.cache.remove, model=model)
        self.cache.forget(model=model)
        return removed

    async def clear_older(self, model: str | None, older_than_s: int) -> int:
        """Remove the entries (of one normalised ``model``, or all) stored more than ``older_than_s`` seconds ago."""
        cutoff = time.time() - older_than_s
        return await self._remove_where(model, lambda entry: entry.created < cutoff)

    async def clear_stale(self, model: str | None) -> int:
        """Remove the entries (of one normalised ``model``, or all) answered by a build their model no longer
        has: replaced by a new one, or not installed any more. The model list is read first (offline: the one
        kept); raises :class:`BuildsUnknown` when it cannot be, or builds are not tracked at the upstream."""
        builds = self.builds
        await builds.refresh()
        if not builds.tracked:
            raise BuildsUnknown(builds.reason or "model builds are not tracked at this upstream")
        if builds.error is not None or (builds.checked is None and not builds.offline):
            raise BuildsUnknown(f"cannot read the model list at {builds.shown}: {builds.error or 'no answer yet'}")
        digests = dict(builds.digests)
        return await self._remove_where(model, lambda entry: is_stale(digests, entry.model, entry.digest))

    async def _remove_where(self, model: str | None, which: Callable[[Entry], bool]) -> int:
        if isinstance(self.store, NullStore):
            return 0
        removed, keys = await asyncio.to_thread(self._remove, model, which)
        for key in keys:
            self.cache.forget(key=key)
        return removed

    def _remove(self, model: str | None, which: Callable[[Entry], bool]) -> tuple[int, list[str]]:
        """In a thread: find the entries ``which`` picks, then remove them (the store is not changed while it is
        read)."""
        keys = [entry.key for entry in self.store.entries(model) if which(entry)]
        return sum(self.cache.remove(key=key) for key in keys), keys

    async def explain(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Why a request would miss (:mod:`core.cache.request.explain`), keyed as the proxy keys it now. Raises
        :class:`core.cache.request.explain.ExplainError` for a bad request."""
        asked = ask(payload, self.keys)
        return await asyncio.to_thread(
            compare, asked, lambda key: self.cache.lookup(key, time.time()), self.store.entries(asked.model)
        )

    def count_by_model(self) -> dict[str, int]:
        """How many entries each model has; none when the store cannot tell (its failure is reported)."""
        try:
            return self.store.count_by_model()
        except Exception as error:  # noqa: BLE001 - the models are worth showing without their counts
            self.cache.failed(error, keep_first=True)
            return {}
