"""The runner processes of the fake ``ollama`` (``FAKE_OLLAMA_RUNNERS=1``): one per loaded model, as Ollama
starts them, so that a test reads real processes with real psutil.

:class:`RunnerOllama` is the fake server whose loading a model starts its runner
(:mod:`tests.fakes.fake_runner`, with ``--model`` the model file its ``/api/show`` Modelfile names, holding the
model's ``runner_mib`` MiB) before the model shows in ``/api/ps``, and whose unloading, removing or resetting
stops it. A runner ends with its Ollama in any case: it runs until its stdin ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from tests.fakes.fake_config import blob_path, display_shortest
from tests.fakes.ollama_server import FakeOllama

STOP_WAIT_S = 10.0  # a bound for a loaded machine: a runner exits as soon as its stdin ends


class RunnerOllama(FakeOllama):
    """A fake Ollama with a runner process per loaded model; :meth:`close` stops them all."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._runners: dict[str, subprocess.Popen[bytes]] = {}
        self._runners_lock = threading.Lock()

    def runner_pids(self) -> dict[str, int]:
        """The pid of each loaded model's runner, by model name."""
        with self._runners_lock:
            return {name: runner.pid for name, runner in self._runners.items()}

    def mark_loaded(self, model: Mapping[str, Any]) -> None:
        self._start(model)
        super().mark_loaded(model)

    def mark_unloaded(self, model: Mapping[str, Any]) -> None:
        super().mark_unloaded(model)
        self._stop(str(model["name"]))

    def remove_model(self, name: str) -> bool:
        removed = super().remove_model(name)
        self._stop(display_shortest(name))
        return removed

    def reset(self) -> None:
        super().reset()
        self.close()

    def close(self) -> None:
        for name in list(self.runner_pids()):
            self._stop(name)

    def _start(self, model: Mapping[str, Any]) -> None:
        """Start the runner of ``model`` unless it runs, and wait until it holds its memory (Ollama too answers
        once the model is loaded)."""
        name = str(model["name"])
        with self._runners_lock:
            if name in self._runners and self._runners[name].poll() is None:
                return
            runner = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.fake_runner", "--model", blob_path(self.config(), model)]
                + ["--port", "0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "FAKE_RUNNER_MIB": str(int(model.get("runner_mib") or 0))},
            )
            assert runner.stdout is not None
            runner.stdout.readline()  # "ready", or nothing if it died
            self._runners[name] = runner

    def _stop(self, name: str) -> None:
        with self._runners_lock:
            runner = self._runners.pop(name, None)
        if runner is not None and runner.stdin is not None:
            runner.stdin.close()
            runner.wait(timeout=STOP_WAIT_S)
