"""Ollama's models as the control API shows them: those in memory, those installed with the entries the cache
holds of each, and unloading one. Offline, Ollama is never asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.ollama.client import OllamaAPI, OllamaError

OFFLINE_REFUSAL = "the proxy is offline (proxy.offline): it neither calls, starts nor stops Ollama"


class Models:
    """Asks the Ollama at ``upstream``; ``counts`` gives the cache's entries per model."""

    def __init__(self, upstream: str, offline: bool, counts: Callable[[], dict[str, int]]) -> None:
        self.upstream, self.offline, self._counts = upstream, offline, counts

    async def loaded(self) -> list[dict[str, Any]]:
        """Ollama's loaded models (``/api/ps``) as JSON (none while offline); raises :class:`OllamaError`."""
        if self.offline:
            return []
        async with OllamaAPI(self.upstream) as api:
            return [model.model_dump(mode="json") for model in await api.loaded()]

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
