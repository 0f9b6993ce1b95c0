"""The calls a tuning measurement makes to Ollama, each failure turned into a `TuneError` for people.

Every run sends the same request (`request_body`): a short, deterministic generation, not streamed,
with the candidate's ``num_thread``. `OllamaClient` names the upstream (credentials hidden) in every
message, lists the installed models when the one asked for is missing, and passes Ollama's own error on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from core.config.parsing import redact

PROMPT = "Count from one to one hundred in English words, separated by commas."
NUM_PREDICT = 32  # tokens generated per run
SEED = 42
KEEP_ALIVE = "5m"  # keep the model loaded between runs
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 600.0  # a warm-up may load a large model from a slow disk
EMBEDDING_MARK = "embed"  # in a model's name: an embedding model, when Ollama does not list capabilities


class TuneError(Exception):
    """A measurement that cannot run or finish; the message says why, in words for people."""


def request_body(model: str, num_thread: int) -> dict[str, Any]:
    """The ``POST /api/generate`` body of every run: the same short, deterministic generation."""
    return {"model": model, "prompt": PROMPT, "stream": False, "keep_alive": KEEP_ALIVE,
            "options": {"num_thread": num_thread, "temperature": 0, "seed": SEED, "num_predict": NUM_PREDICT}}


def check_url(upstream: str) -> None:
    """Raise `TuneError` unless ``upstream`` is an http(s) URL with a host and a valid port."""
    try:
        url = httpx.URL(upstream)
        valid = url.scheme in ("http", "https") and bool(url.host) and 0 < (url.port or 80) < 65536
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise TuneError(f"the upstream {upstream!r} is not an http:// or https:// URL with a host and a port")


def _error_text(answer: httpx.Response) -> str:
    """Ollama's ``{"error": ...}`` message, or the start of whatever else the body is."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error) if error else (answer.text.strip()[:200] or f"HTTP {answer.status_code}")


class OllamaClient:
    """The few calls a measurement makes, each failure turned into a `TuneError` naming the address."""

    def __init__(self, client: httpx.AsyncClient, upstream: str) -> None:
        """``upstream``: Ollama's base URL (checked by `check_url`); ``client`` is used, never closed."""
        self.client = client
        self.upstream = upstream.rstrip("/")
        self.shown = redact(self.upstream)

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """Ollama's answer, whatever its status; raises `TuneError` when there is none."""
        try:
            return await self.client.request(method, self.upstream + path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise TuneError(f"cannot reach Ollama at {self.shown}: {error or type(error).__name__};"
                            " is it running there?") from error
        except httpx.TimeoutException as error:
            raise TuneError(f"Ollama at {self.shown} did not answer {path} in time") from error
        except httpx.HTTPError as error:
            raise TuneError(f"the request to Ollama at {self.shown}{path} failed:"
                            f" {error or type(error).__name__}") from error

    async def models(self) -> list[dict[str, Any]]:
        """Installed models as ``GET /api/tags`` lists them (most recently modified first)."""
        answer = await self.call("GET", "/api/tags")
        try:
            models = answer.json()["models"] if answer.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            models = None
        if not isinstance(models, list):
            raise TuneError(f"{self.shown} did not list its models like Ollama"
                            f" (GET /api/tags: {_error_text(answer)})")
        return [model for model in models if isinstance(model, dict) and model.get("name")]

    async def generate(self, model: str, num_thread: int) -> dict[str, Any]:
        """One run's answer; raises `TuneError` for an unknown model, a refusal or an answer without timings."""
        answer = await self.call("POST", "/api/generate", request_body(model, num_thread))
        if answer.status_code == 404:
            names = [str(m["name"]) for m in await self.models()]
            installed = f"installed: {', '.join(names)}" if names else "no model is installed"
            raise TuneError(f"model {model!r} is not installed in Ollama at {self.shown} ({installed})")
        if answer.status_code != 200:
            raise TuneError(f"Ollama at {self.shown} refused to generate with {model!r}:"
                            f" {_error_text(answer)} (HTTP {answer.status_code})")
        try:
            stats: dict[str, Any] = answer.json()
            if int(stats["eval_count"]) < 1 or int(stats["eval_duration"]) < 1:
                raise ValueError("no tokens")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise TuneError(f"Ollama at {self.shown} answered without a generation timing"
                            " (eval_count, eval_duration)") from error
        return stats


def pick_model(models: Sequence[dict[str, Any]]) -> str | None:
    """The first model that can generate text: with ``capabilities`` listed, one having ``"completion"``;
    without, one whose name does not contain ``"embed"``. None when there is none."""
    for model in models:
        capabilities = model.get("capabilities")
        if isinstance(capabilities, list):
            if "completion" in capabilities:
                return str(model["name"])
        elif EMBEDDING_MARK not in str(model["name"]).lower():
            return str(model["name"])
    return None
