"""Changing the tuning of a running engine: applying a thread count, and measuring in the background.

``POST /-/tune`` starts a measurement against the engine's own upstream (never through the cache);
its progress and result appear in :attr:`TuningControl.status`, which ``/-/stats`` and so ``/-/events``
carry once a second, and which ``GET /-/tune`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from core.config.file import write_setting
from core.tuning.measure import Progress, TuneError, candidates, measure
from core.tuning.in_force import overrides
from core.tuning.recommend import recommend

if TYPE_CHECKING:
    from core.engine.engine import Engine

log = logging.getLogger(__name__)


class TuningControl:
    """Owns the tuning of ``engine`` once it serves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.status: dict[str, Any] = {"state": "idle"}
        self._task: asyncio.Task[None] | None = None

    async def apply_threads(self, num_thread: int) -> dict[str, Any]:
        """Use ``num_thread`` from now on: the environment of a supervised Ollama (restarted) and injection.

        Raises :class:`core.tuning.recommend.TuningError` for a count the machine cannot honour.
        """
        engine = self.engine
        engine.tuning = recommend(engine.hardware, {**overrides(engine.settings), "tuning.num_thread": num_thread})
        engine.supervisor.set_env({**engine.tuning.env, **engine.settings["ollama.env"]})
        if engine.proxy.inject_threads is not None:
            engine.proxy.inject_threads = num_thread
        reply: dict[str, Any] = {"num_thread": num_thread}
        if "LLAMA_ARG_THREADS" in engine.settings["ollama.env"]:
            reply["note"] = "ollama.env sets LLAMA_ARG_THREADS, which wins over this value"
        if not engine.supervisor.supervising:
            reply["ollama_restart"] = ("Ollama is not supervised by Ollacache: restart it yourself with "
                                       f"LLAMA_ARG_THREADS={num_thread}")
            return reply
        refusal = await engine.supervisor.restart()
        reply["ollama_restart"] = refusal or "restarting with the new environment"
        return reply

    def start(self, model: str | None, runs: int, apply: bool) -> bool:
        """Begin a measurement unless one is running; returns whether it began."""
        if self._task is not None and not self._task.done():
            return False
        self.status = {"state": "running", "model": model, "progress": None}
        self._task = asyncio.get_running_loop().create_task(self._run(model, runs, apply))
        return True

    async def _run(self, model: str | None, runs: int, apply: bool) -> None:
        engine = self.engine

        def progress(event: Progress) -> None:
            self.status["progress"] = event.to_json()
            engine.events.publish("tune_did_progress", event.to_json())

        try:
            result = await measure(engine.settings["proxy.upstream"], model, candidates(engine.hardware), runs,
                                   progress=progress)
        except TuneError as error:
            self.status = {"state": "failed", "error": str(error)}
            return
        status: dict[str, Any] = {"state": "done", "result": result.to_json()}
        if apply:
            best = result.best.num_thread
            try:
                write_setting(engine.settings.config_dir, "tuning.num_thread", best)
                status["applied"] = await self.apply_threads(best)
            except (OSError, ValueError) as error:  # TuningError is a ValueError
                status = {"state": "failed", "result": result.to_json(),
                          "error": f"measured, but could not apply {best} threads: {error}"}
        self.status = status
        engine.events.publish("tune_did_finish", status)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
