"""Measuring thread counts in the background of a running engine (``POST /-/tune``).

A run measures against the engine's own upstream (never through the cache). Its progress and result are
in :attr:`TuningRuns.status`, which ``/-/stats`` (and so ``/-/events``) carries once a second and
``GET /-/tune`` returns; progress and the end are also published as ``tune_did_progress`` and
``tune_did_finish``. Applying the winner goes through the one method the engine gives for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from core.config.file import write_setting
from core.observe.events import EventHub
from core.tuning.measure import Progress, TuneError, measure

ApplyThreads = Callable[[int], Awaitable[dict[str, Any]]]


class TuningRuns:
    """At most one measurement at a time against ``upstream`` over ``candidates`` thread counts.

    ``apply_threads`` puts a thread count in force (the engine's :meth:`~core.engine.engine.Engine.apply_threads`);
    with ``apply`` asked, the winner is also kept as ``tuning.num_thread`` in ``config_dir``'s config.toml.
    """

    def __init__(
        self,
        *,
        upstream: str,
        candidates: Sequence[int],
        config_dir: Path,
        events: EventHub,
        apply_threads: ApplyThreads,
    ) -> None:
        self.upstream = upstream
        self.candidates = list(candidates)
        self.config_dir = config_dir
        self.events = events
        self.apply_threads = apply_threads
        self.status: dict[str, Any] = {"state": "idle"}
        self._task: asyncio.Task[None] | None = None

    def start(self, model: str | None, runs: int, apply: bool) -> bool:
        """Begin a measurement unless one is running; returns whether it began."""
        if self._task is not None and not self._task.done():
            return False
        self.status = {"state": "running", "model": model, "progress": None}
        self._task = asyncio.get_running_loop().create_task(self._run(model, runs, apply))
        return True

    async def _run(self, model: str | None, runs: int, apply: bool) -> None:
        def progress(event: Progress) -> None:
            self.status["progress"] = event.to_json()
            self.events.publish("tune_did_progress", event.to_json())

        try:
            result = await measure(self.upstream, model, self.candidates, runs, progress=progress)
        except TuneError as error:
            self.status = {"state": "failed", "error": str(error)}
            self.events.publish("tune_did_finish", self.status)
            return
        status: dict[str, Any] = {"state": "done", "result": result.to_json()}
        if apply:
            best = result.best.num_thread
            try:
                write_setting(self.config_dir, "tuning.num_thread", best)
                status["applied"] = await self.apply_threads(best)
            except (OSError, ValueError) as error:  # TuningError is a ValueError
                status = {
                    "state": "failed",
                    "result": result.to_json(),
                    "error": f"measured, but could not apply {best} threads: {error}",
                }
        self.status = status
        self.events.publish("tune_did_finish", status)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
