"""Which build of each model the upstream has: a map of model name to digest, read from ``/api/tags``.

The digest of a model's build is part of the cache key, so an answer of a replaced build (a new
``ollama pull``, a ``create`` over an old name) is never served. The map is kept here:

- read every few seconds (:data:`REFRESH_S`) through the official client, so a change made to Ollama
  directly is seen within one interval, and at once when a request names a model the map does not hold
  (:meth:`Builds.learn`) or a ``pull``, ``create``, ``copy`` or ``delete`` passed through the proxy;
- looked up without awaiting anything (:meth:`Builds.digest`, :meth:`Builds.unknown`): a hit for a known
  model costs a dict lookup;
- read by concurrent callers once: callers during a read share the next one, which starts after they asked;
- written to ``builds.json`` in the cache directory (private) on each change and read at start, so an
  engine that starts offline (:attr:`Builds.offline`, never asking the upstream) keys requests as the
  online one that recorded the entries did.

An upstream without ``/api/tags`` (llama.cpp's server, LM Studio, vLLM: HTTP 404, or an answer that is not
Ollama's) cannot be tracked: :attr:`Builds.tracked` is false, keys use the model name alone, and
:meth:`Builds.to_json` says why (``/-/health`` shows it). Listeners (:meth:`Builds.on_change`) hear of
every change to the map, such as the request memo, which holds keys made with the old digests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.cache.request.keys import normalize_model
from core.config.parsing import redact
from core.config.private import write_private
from core.ollama.client import OllamaAPI, OllamaError

log = logging.getLogger(__name__)

FILE = "builds.json"
REFRESH_S = 5.0  # seconds between reads of /api/tags
TIMEOUT_S = 5.0  # for one read; a busy Ollama may take a moment to list its models
# Answers that mean "no /api/tags here" (200: an answer that is not Ollama's list).
UNTRACKABLE = frozenset({200, 404, 405, 501})


class BuildsUnknown(RuntimeError):
    """Which build of each model is current cannot be told (no model list at the upstream, or none read)."""


class Builds:
    """The digest of each model installed at ``upstream``, by normalised name (``llama3.2:latest``)."""

    def __init__(
        self,
        upstream: str,
        directory: Path | None,
        *,
        offline: bool = False,
        interval_s: float = REFRESH_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        """``directory``: where the map is kept between runs (``None``: nowhere); ``offline``: never ask
        ``upstream``, use the map kept there; ``interval_s``: seconds between reads."""
        self.upstream = upstream
        self.shown = redact(upstream.rstrip("/"))
        self.path = directory / FILE if directory is not None else None
        self.offline = offline
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.digests: dict[str, str] = {}
        self.tracked = True  # until the upstream shows it has no /api/tags
        self.reason: str | None = None  # why builds are not tracked
        self.error: str | None = None  # why the last read failed, while the map read before it is used
        self.checked: float | None = None  # wall-clock time of the last read that succeeded
        self.reads = 0  # reads of /api/tags asked of the upstream
        self._absent: set[str] = set()  # asked about since the last read, and not installed then
        self._listeners: list[Callable[[], None]] = []
        self._current: asyncio.Task[None] | None = None  # the read under way
        self._next: asyncio.Task[None] | None = None  # the read that starts after it, which new callers share
        self._loop: asyncio.Task[None] | None = None
        self._api: OllamaAPI | None = None
        self._load()
        self._learning = self.tracked and not offline

    # --- lookups: no await, a dict lookup each --------------------------------------------------

    def digest(self, model: str) -> str | None:
        """The digest of normalised ``model``'s build, or ``None`` (not installed, or builds not tracked)."""
        return self.digests.get(model)

    def unknown(self, model: str) -> bool:
        """Whether a request for normalised ``model`` should wait for :meth:`learn` before it is keyed: the
        map does not hold it, builds are tracked online, and no read since it was last asked about lacked it."""
        return self._learning and model not in self.digests and model not in self._absent

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the event loop) whenever the map changes."""
        self._listeners.append(listener)

    # --- reading the upstream ---------------------------------------------------------------------

    async def learn(self, model: str) -> None:
        """Read the map now for a request naming ``model``, which it does not hold; until the next read, a
        model still missing is not asked about again (it may not be installed at all)."""
        await self.refresh()
        if model not in self.digests:
            self._absent.add(model)

    async def reread(self) -> None:
        """Ollama answers (again): read the map now, and until it is read every model missing from it is asked
        about, not only those no read has lacked yet (a read that failed while nothing answered lacked them all)."""
        self._absent.clear()
        await self.refresh()

    async def refresh(self) -> None:
        """Read ``/api/tags`` and take its digests; what this sees was read after the call. Concurrent callers
        share one read; a read that fails keeps the map as it was. Offline, nothing is read."""
        if self.offline:
            return
        if self._next is None:
            self._next = asyncio.ensure_future(self._round(self._current))
        await asyncio.shield(self._next)

    async def _round(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        self._current, self._next = self._next, None  # callers from now on share the round after this one
        try:
            await self._read()
        except Exception:  # noqa: BLE001 - the map read before stays in use; the next round tries again
            log.exception("could not read the model builds at %s", self.shown)
        finally:
            if self._current is asyncio.current_task():
                self._current = None

    async def _read(self) -> None:
        if self._api is None:
            self._api = OllamaAPI(self.upstream, timeout=self.timeout_s)
        self.reads += 1
        try:
            models = await self._api.installed()
        except OllamaError as failure:
            if failure.status in UNTRACKABLE:
                self._take(
                    {},
                    tracked=False,
                    reason=(
                        f"{self.shown} has no Ollama model list (/api/tags: {failure.cause}): model builds cannot be "
                        "tracked at this upstream, so keys use the model name alone"
                    ),
                )
            else:
                if self.error != failure.cause:
                    log.info("cannot read the model builds (%s); using the ones read before", failure)
                self.error = failure.cause
            return
        self._take(
            {normalize_model(model.model): model.digest for model in models if model.model and model.digest},
            tracked=True,
            reason=None,
        )

    def _take(self, digests: dict[str, str], *, tracked: bool, reason: str | None) -> None:
        changed = digests != self.digests or tracked != self.tracked
        self.digests, self.tracked, self.reason, self.error = digests, tracked, reason, None
        self.checked = time.time()
        self._learning = tracked
        self._absent.clear()
        if not changed:
            return
        if not tracked:
            log.warning("%s", reason)
        self._save()
        for listener in self._listeners:
            listener()

    # --- the refresh loop -------------------------------------------------------------------------

    def start(self) -> None:
        """Read the map now and then every :attr:`interval_s` seconds (offline: never)."""
        if not self.offline and self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self._keep_reading())

    async def _keep_reading(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        """End the loop and any read under way; close the connection to the upstream."""
        tasks = [task for task in (self._loop, self._current, self._next) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = self._current = self._next = None
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    # --- kept between runs ------------------------------------------------------------------------

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            models = data["models"]
            self.digests = {str(name): str(digest) for name, digest in models.items()}
            self.tracked = bool(data.get("tracked", True))
            self.reason = data.get("reason") if not self.tracked else None
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring the model builds kept in %s: %s", self.path, error)

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"upstream": self.shown, "tracked": self.tracked, "reason": self.reason, "models": self.digests}
        try:
            write_private(self.path, json.dumps(data, indent=1, sort_keys=True))
        except OSError as error:
            log.warning("could not keep the model builds in %s: %s", self.path, error)

    def to_json(self) -> dict[str, Any]:
        """What ``/-/health`` shows under ``builds``."""
        return {
            "tracked": self.tracked,
            "reason": self.reason,
            "offline": self.offline,
            "models": len(self.digests),
            "checked": self.checked,
            "error": self.error,
        }

    def stale(self, model: str, digest: str) -> bool:
        """Whether an entry of normalised ``model`` answered by build ``digest`` can no longer be served: the
        model has another build now, or is not installed. Untracked, nothing is stale."""
        return self.tracked and is_stale(self.digests, model, digest)


def is_stale(digests: Mapping[str, str], model: str, digest: str) -> bool:
    """Whether an entry of normalised ``model`` answered by build ``digest`` can no longer be served, given the
    installed models' ``digests``: the model has another build now, or is not installed."""
    return digests.get(model) != digest
