"""The calls a tuning measurement makes to Ollama, through the official client, each failure a `TuneError` for people.

Every run sends the same request (`generation_options` and the constants here): a short, deterministic
generation, not streamed, with the candidate's ``num_thread``. `OllamaClient` names the upstream
(credentials hidden) in every message, lists the installed models when the one asked for is missing,
and passes Ollama's own error on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import ollama

from core.config.parsing import redact
from core.ollama.client import CAUSE_CHARS, client_options

PROMPT = "Count from one to one hundred in English words, separated by commas."
NUM_PREDICT = 32  # tokens generated per run
SEED = 42
KEEP_ALIVE = "5m"  # keep the model loaded between runs
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 600.0  # a warm-up may load a large model from a slow disk
EMBEDDING_MARK = "embed"  # in a model's name: an embedding model, when Ollama does not list capabilities
T = TypeVar("T")


class TuneError(Exception):
    """A measurement that cannot run or finish; the message says why, in words for people."""


def generation_options(num_thread: int) -> dict[str, Any]:
    """The ``options`` of every run: the same short, deterministic generation on ``num_thread`` threads."""
    return {"num_thread": num_thread, "temperature": 0, "seed": SEED, "num_predict": NUM_PREDICT}


def check_url(upstream: str) -> None:
    """Raise `TuneError` unless ``upstream`` is an http(s) URL with a host and a valid port."""
    try:
        url = httpx.URL(upstream)
        valid = url.scheme in ("http", "https") and bool(url.host) and 0 < (url.port or 80) < 65536
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise TuneError(f"the upstream {upstream!r} is not an http:// or https:// URL with a host and a port")


def new_client(upstream: str) -> ollama.AsyncClient:
    """An official client for ``upstream`` (checked by `check_url`) with the measurement's timeouts."""
    return ollama.AsyncClient(
        **client_options(upstream), timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    )


def _said(error: Exception) -> str:
    """What Ollama said in a refusal, or why its answer could not be read."""
    if isinstance(error, ollama.ResponseError):
        return str(error.error).strip()[:CAUSE_CHARS] or f"HTTP {error.status_code}"
    return f"not Ollama's answer: {str(error).splitlines()[0] if str(error) else type(error).__name__}"


class OllamaClient:
    """The few calls a measurement makes, each failure turned into a `TuneError` naming the address."""

    def __init__(self, client: ollama.AsyncClient, upstream: str) -> None:
        """``upstream``: Ollama's base URL, as ``client`` was made for; ``client`` is used, never closed."""
        self.client = client
        self.shown = redact(upstream.rstrip("/"))

    async def call(self, path: str, answer: Awaitable[T]) -> T:
        """``answer`` (a call of the client on ``path``) awaited; raises `TuneError` when Ollama gave none.

        Ollama's refusals (`ollama.ResponseError`) and answers that are not its JSON (`ValueError`)
        pass through for the caller to word.
        """
        try:
            return await answer
        except ConnectionError as error:  # the client's own, for httpx.ConnectError: its cause is the context
            cause = error.__context__ or error
            raise TuneError(
                f"cannot reach Ollama at {self.shown}: {cause or type(cause).__name__}; is it running there?"
            ) from error
        except httpx.ConnectTimeout as error:
            raise TuneError(
                f"cannot reach Ollama at {self.shown}: {error or type(error).__name__}; is it running there?"
            ) from error
        except httpx.TimeoutException as error:
            raise TuneError(f"Ollama at {self.shown} did not answer {path} in time") from error
        except httpx.HTTPError as error:
            raise TuneError(
                f"the request to Ollama at {self.shown}{path} failed: {error or type(error).__name__}"
            ) from error

    async def models(self) -> list[str]:
        """The names of the installed models as ``GET /api/tags`` lists them (most recently modified first)."""
        try:
            listed = await self.call("/api/tags", self.client.list())
        except (ollama.ResponseError, ValueError) as error:
            raise TuneError(
                f"{self.shown} did not list its models like Ollama (GET /api/tags: {_said(error)})"
            ) from error
        return [model.model for model in listed.models if model.model]

    async def capabilities(self, model: str) -> Sequence[str] | None:
        """What ``model`` can do (``POST /api/show``), or None when Ollama does not say."""
        try:
            return (await self.call("/api/show", self.client.show(model))).capabilities
        except (ollama.ResponseError, ValueError):
            return None

    async def pick(self) -> str | None:
        """The first installed model that can generate text (see `can_generate`), or None."""
        for name in await self.models():
            if can_generate(name, await self.capabilities(name)):
                return name
        return None

    async def generate(self, model: str, num_thread: int) -> ollama.GenerateResponse:
        """One run's answer; raises `TuneError` for an unknown model, a refusal or an answer without timings."""
        try:
            answer = await self.call(
                "/api/generate",
                self.client.generate(
                    model, PROMPT, options=generation_options(num_thread), keep_alive=KEEP_ALIVE, stream=False
                ),
            )
        except ollama.ResponseError as error:
            if error.status_code == 404:
                names = await self.models()
                installed = f"installed: {', '.join(names)}" if names else "no model is installed"
                raise TuneError(f"model {model!r} is not installed in Ollama at {self.shown} ({installed})") from error
            raise TuneError(
                f"Ollama at {self.shown} refused to generate with {model!r}: {_said(error)} (HTTP {error.status_code})"
            ) from error
        except ValueError as error:
            raise self._untimed() from error
        if (answer.eval_count or 0) < 1 or (answer.eval_duration or 0) < 1:
            raise self._untimed()
        return answer

    def _untimed(self) -> TuneError:
        return TuneError(f"Ollama at {self.shown} answered without a generation timing (eval_count, eval_duration)")


def can_generate(name: str, capabilities: Sequence[str] | None) -> bool:
    """Whether a model can generate text: with ``capabilities`` known, it has ``"completion"``; without,
    its name does not contain ``"embed"``."""
    if capabilities is not None:
        return "completion" in capabilities
    return EMBEDDING_MARK not in name.lower()


def pick_model(models: Sequence[Mapping[str, Any]]) -> str | None:
    """The first model that can generate text (`can_generate`) of ``models``, each a mapping with ``"name"`` and
    perhaps ``"capabilities"`` (a list). None when there is none."""
    for model in models:
        capabilities = model.get("capabilities")
        if can_generate(str(model["name"]), capabilities if isinstance(capabilities, list) else None):
            return str(model["name"])
    return None
