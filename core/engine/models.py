"""Ollama's models as the control API shows them: those in memory with the resident memory of their runners,
those installed with the entries the cache holds of each, and unloading one. Offline, Ollama is never asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.observe.runners import Runner, attribute, model_files, read_runners
from core.ollama.client import LoadedModel, OllamaAPI, OllamaError

OFFLINE_REFUSAL = "the proxy is offline (proxy.offline): it neither calls, starts nor stops Ollama"


class Models:
    """Asks the Ollama at ``upstream``; ``counts`` gives the cache's entries per model, ``ollama_pid`` the process
    of that Ollama when it runs on this machine and can be read (else None)."""

    def __init__(
        self,
        upstream: str,
        offline: bool,
        counts: Callable[[], dict[str, int]],
        ollama_pid: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.upstream, self.offline, self._counts, self._ollama_pid = upstream, offline, counts, ollama_pid
        self._files: dict[str, frozenset[str]] = {}  # a build's digest -> its model files: a build never changes

    async def loaded(self) -> list[dict[str, Any]]:
        """Ollama's loaded models (``/api/ps``) as JSON (none while offline), each with ``runner``: the resident
        memory of its runner (:mod:`core.observe.runners`), or None where no runner process is found; raises
        :class:`OllamaError`."""
        if self.offline:
            return []
        async with OllamaAPI(self.upstream) as api:
            models = await api.loaded()
            files = {_name(model): await self._model_files(api, model) for model in models}
        resident = attribute(files, await asyncio.to_thread(self._runners)) if models else {}
        return [
            {
                **model.model_dump(mode="json"),
                "runner": runner.to_json() if (runner := resident.get(_name(model))) else None,
            }
            for model in models
        ]

    def _runners(self) -> list[Runner]:
        """Ollama's runner processes, when its process is known (finding it may read the socket table)."""
        pid = self._ollama_pid()
        return read_runners(pid) if pid is not None else []

    async def _model_files(self, api: OllamaAPI, model: LoadedModel) -> frozenset[str] | None:
        """The file names of a loaded model (its Modelfile's ``FROM`` lines), or None when Ollama does not say."""
        digest = model.digest or ""
        if digest in self._files:
            return self._files[digest]
        try:
            files = model_files(await api.modelfile(_name(model)))
        except OllamaError:
            return None
        if digest and files:
            self._files[digest] = files
        return files or None

    async def installed(self) -> list[dict[str, Any]]:
        """The models Ollama has installed (``/api/tags``), each with the entries the cache holds of it; raises
        :class:`OllamaError`. Offline: the models that have entries, as the cache knows them."""
        counts = await asyncio.to_thread(self._counts)
        if self.offline:
            return [{"name": name, "entries": count} for name, count in sorted(counts.items())]
        async with OllamaAPI(self.upstream) as api:
            models = await api.installed()
        return [
            {
                "name": model.model,
                "digest": model.digest,
                "size": model.size,
                "modified_at": model.modified_at.isoformat() if model.modified_at else None,
                "family": model.details.family if model.details else None,
                "parameter_size": model.details.parameter_size if model.details else None,
                "quantization": model.details.quantization_level if model.details else None,
                "entries": counts.get(model.model or "", 0),
            }
            for model in models
        ]

    async def unload(self, model: str) -> None:
        """Have Ollama unload ``model`` now; raises :class:`OllamaError` (404: unknown)."""
        if self.offline:
            raise OllamaError(f"unload {model}", OFFLINE_REFUSAL)
        async with OllamaAPI(self.upstream, timeout=30.0) as api:  # answered once the runner is gone
            await api.unload(model)


def _name(model: LoadedModel) -> str:
    return model.name or model.model or ""
