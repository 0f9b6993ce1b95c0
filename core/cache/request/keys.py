"""Cache keys: a hash of the canonical form of a request (pure, no I/O).

Two requests get the same key exactly when the model would answer them the same way. The canonical
form therefore drops what cannot change the output (``stream``, ``keep_alive``, performance-only
options such as ``num_thread``), makes the defaults that the API itself fixes explicit (absent
``options`` is ``{}``, absent ``raw`` is ``false``), sorts JSON object keys, writes integral floats
as integers (``0.0`` is ``0``) and normalises model names as Ollama does (``llama3.2`` is
``llama3.2:latest``, names are case-insensitive). Everything else in the body stays in the key.

A large canonical form (an image in base64, a long document) is hashed in pieces of its JSON text
(:mod:`core.cache.request.canonical_json`) rather than built whole: the key is the same, and keying a 50 MB body
needs little memory beyond the parsed body itself.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.cache.request.canonical_json import LARGE_FORM, canonical_bytes, canonical_pieces

KEY_VERSION = 1

# Options that change speed or memory but never the tokens produced (Ollama's api.Runner fields and
# the legacy ones it still accepts). num_ctx is a runner option too, but it truncates long prompts,
# so it changes the output and stays in the key.
PERFORMANCE_OPTIONS = frozenset(
    {
        "num_thread",
        "num_gpu",
        "main_gpu",
        "num_batch",
        "use_mmap",
        "use_mlock",
        "low_vram",
        "numa",
        "f16_kv",
        "vocab_only",
        "logits_all",
        "embedding_only",
        "draft_num_predict",
    }
)


@dataclass(frozen=True)
class Route:
    """A cached route: its API family, what it does, and whether it streams when ``stream`` is absent."""

    path: str
    api: Literal["ollama", "openai", "anthropic", "responses"]
    kind: Literal["chat", "generate", "embed", "embeddings"]
    stream_default: bool
    # Fields the API treats as absent when they hold these values (Go zero values, pointer defaults).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Fields that never change the output.
    ignored: frozenset[str] = frozenset({"stream", "keep_alive"})


_OPENAI_IGNORED = frozenset({"stream", "stream_options"})
# ``metadata`` labels a request for the client's own records; the Responses API's ``store``, ``user``,
# ``safety_identifier`` and ``prompt_cache_key`` steer a provider's storage and routing, never the tokens.
_ANTHROPIC_IGNORED = frozenset({"stream", "metadata"})
_RESPONSES_IGNORED = frozenset(
    {"stream", "stream_options", "metadata", "store", "user", "safety_identifier", "prompt_cache_key"}
)
# A Responses request that continues a conversation the server keeps cannot be keyed from its body.
SERVER_STATE = ("previous_response_id", "conversation")

ROUTES: dict[str, Route] = {
    r.path: r
    for r in (
        Route(
            "/api/generate",
            "ollama",
            "generate",
            True,
            {
                "options": {},
                "prompt": "",
                "suffix": "",
                "system": "",
                "template": "",
                "context": [],
                "raw": False,
                "images": [],
            },
        ),
        Route("/api/chat", "ollama", "chat", True, {"options": {}, "messages": [], "tools": []}),
        Route("/api/embed", "ollama", "embed", False, {"options": {}, "truncate": True, "dimensions": 0}),
        Route("/api/embeddings", "ollama", "embeddings", False, {"options": {}, "prompt": ""}),
        Route("/v1/chat/completions", "openai", "chat", False, ignored=_OPENAI_IGNORED),
        Route("/v1/completions", "openai", "generate", False, ignored=_OPENAI_IGNORED),
        Route("/v1/embeddings", "openai", "embed", False, ignored=_OPENAI_IGNORED),
        Route("/v1/messages", "anthropic", "chat", False, ignored=_ANTHROPIC_IGNORED),
        Route("/v1/responses", "responses", "chat", False, ignored=_RESPONSES_IGNORED),
    )
}

# Fields of an Ollama chat message that mean the same when absent, null or empty.
_MESSAGE_OPTIONAL = ("images", "tool_calls", "thinking", "tool_name", "tool_call_id")


class NotCacheable(ValueError):
    """The body is not a request the cache can key (not an object, no model...): pass it through."""


_DEFAULT_HOST = "registry.ollama.ai"
_DEFAULT_NAMESPACE = "library"


def normalize_model(name: str) -> str:
    """Ollama's shortest display form of a model name, lower-cased.

    ``llama3.2``, ``library/llama3.2``, ``registry.ollama.ai/library/llama3.2:latest`` and
    ``Llama3.2:Latest`` all become ``llama3.2:latest``; ``hf.co/org/model:q4`` keeps its host.
    """
    text = name.strip().lower()
    tag = ""
    if text.rfind(":") > text.rfind("/"):
        text, tag = text.rsplit(":", 1)
    parts = text.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else _DEFAULT_NAMESPACE
    host = "/".join(parts[:-2]) if len(parts) >= 3 else _DEFAULT_HOST
    host = host.split("://", 1)[-1]
    tag = tag or "latest"
    if host != _DEFAULT_HOST:
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace != _DEFAULT_NAMESPACE:
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


def _canonical_value(value: Any, size: list[int]) -> Any:
    """Integral floats as ints, objects without null members, recursively.

    Adds to ``size[0]`` the characters of the strings and the members of the containers met: a cheap
    measure of how long the JSON text will be.
    """
    if isinstance(value, str):
        size[0] += len(value)
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, dict):
        size[0] += len(value)
        return {k: _canonical_value(v, size) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        size[0] += len(value)
        return [_canonical_value(v, size) for v in value]
    return value


def canonical_request(path: str, body: Any, context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The canonical form of ``body`` sent to cached route ``path``, plus ``context``.

    ``context`` carries what is not in the body but changes the answer (the model's digest,
    a namespace, a hashed credential); its values are added under ``"context"``.
    Raises :class:`NotCacheable` when the body has no usable shape; the caller then forwards it
    untouched so that the upstream's own error reaches the client.
    """
    return _canonical(path, body, context)[0]


def _canonical(
    path: str, body: Any, context: Mapping[str, str] | None, legacy: bool = False
) -> tuple[dict[str, Any], int]:
    """`canonical_request`, and the measure of its size `_canonical_value` takes (``legacy``: see `legacy_key`)."""
    route = ROUTES[path]
    if not isinstance(body, dict):
        raise NotCacheable("the request body is not a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise NotCacheable("the request has no model name")
    size = [0]
    request = _canonical_value({k: v for k, v in body.items() if k not in route.ignored}, size)
    request["model"] = normalize_model(model)
    if legacy and asks_usage(route, body):
        request["stream_options"] = {"include_usage": True}
    if route.api == "ollama":
        options = request.get("options", {})
        if not isinstance(options, dict):
            raise NotCacheable("options is not a JSON object")
        request["options"] = {k: v for k, v in options.items() if k not in PERFORMANCE_OPTIONS}
        if route.kind == "chat" and isinstance(request.get("messages"), list):
            request["messages"] = [_canonical_message(m) for m in request["messages"]]
        request = {**route.defaults, **request}
    elif route.api == "anthropic":
        request = without_cache_control(request)
    elif route.api == "responses" and any(name in request for name in SERVER_STATE):
        raise NotCacheable("it continues a conversation the server keeps (previous_response_id, conversation)")
    return {"v": KEY_VERSION, "route": path, "request": request, "context": dict(context or {})}, size[0]


def asks_usage(route: Route, body: Mapping[str, Any]) -> bool:
    """Whether a request on an OpenAI route asks ``stream_options.include_usage`` (a usage chunk in its stream)."""
    options = body.get("stream_options")
    return route.api == "openai" and isinstance(options, dict) and options.get("include_usage") is True


def without_cache_control(request: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic request without its ``cache_control`` markers, which only steer a provider's prompt cache:
    at the top, on system and content blocks (tool results' too) and on tools. Elsewhere, such as a property of
    a tool's input schema, the name is the user's own and stays."""

    def block(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        kept = {k: v for k, v in value.items() if k != "cache_control"}
        if isinstance(kept.get("content"), list):
            kept["content"] = [block(part) for part in kept["content"]]
        return kept

    out = {k: v for k, v in request.items() if k != "cache_control"}
    for name in ("system", "tools"):
        if isinstance(out.get(name), list):
            out[name] = [block(part) for part in out[name]]
    if isinstance(out.get("messages"), list):
        out["messages"] = [block(message) for message in out["messages"]]
    return out


def _canonical_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    return {k: v for k, v in message.items() if not (k in _MESSAGE_OPTIONAL and v in ("", []))}


def cache_key(path: str, body: Any, context: Mapping[str, str] | None = None) -> str:
    """The hex SHA-256 of the canonical form of ``body`` on route ``path``.

    Raises :class:`NotCacheable` (see `canonical_request`), or ``UnicodeEncodeError`` for a string
    UTF-8 cannot encode.
    """
    return _hashed(*_canonical(path, body, context))


def legacy_key(path: str, body: Any, context: Mapping[str, str] | None = None) -> str:
    """The key an OpenAI request asking ``stream_options.include_usage`` had when the option was part of it (its
    stream then carried usage and others did not); entries stored under it are still found by it."""
    return _hashed(*_canonical(path, body, context, legacy=True))


def keys_per_input(
    path: str, body: Mapping[str, Any], texts: Sequence[str], context: Mapping[str, str] | None
) -> list[str]:
    """``cache_key(path, {**body, "input": [text]}, context)`` for each of ``texts``, the part they share made
    canonical once: the canonical text of the request with a placeholder for its one input is cut around the
    placeholder, and each input's JSON text goes in between, hashed on from the shared beginning.

    Raises what `cache_key` raises.
    """
    placeholder = f"ollacache-input-{secrets.token_hex(16)}"  # appears nowhere else in the request
    form, _ = _canonical(path, {**body, "input": [placeholder]}, context)
    before, found, after = canonical_bytes(form).partition(f'"{placeholder}"'.encode())
    if not found or placeholder.encode() in after:  # not one place to put the input in: key each alone
        return [cache_key(path, {**body, "input": [text]}, context) for text in texts]
    start = hashlib.sha256(before)
    keys = []
    for text in texts:
        digest = start.copy()
        digest.update(canonical_bytes(text))
        digest.update(after)
        keys.append(digest.hexdigest())
    return keys


def _hashed(form: dict[str, Any], size: int) -> str:
    if size < LARGE_FORM:
        return hashlib.sha256(canonical_bytes(form)).hexdigest()
    digest = hashlib.sha256()
    for piece in canonical_pieces(form):
        digest.update(piece)
    return digest.hexdigest()


def is_sampled(route: Route, body: Any) -> bool:
    """Whether the answer to ``body`` on ``route`` is drawn at random, so that asking again may differ.

    Embeddings never are. A generation is deterministic with temperature 0 (greedy decoding) or a fixed
    seed (a whole number of at least 0; Ollama's -1 means a new random seed each time), in ``options`` on
    the native routes and at the top level on the OpenAI, Anthropic and Responses ones. Without a temperature
    it is sampled: Ollama's default is 0.8 (its OpenAI routes send 1.0). A model whose Modelfile sets
    temperature 0 is not seen here, so its requests count as sampled unless they say so.
    """
    if route.kind in ("embed", "embeddings"):
        return False
    if not isinstance(body, dict):
        return True
    settings = body.get("options") if route.api == "ollama" else body
    if not isinstance(settings, dict):
        return True
    temperature, seed = settings.get("temperature"), settings.get("seed")
    if _is_number(temperature) and temperature == 0:
        return False
    return not (_is_number(seed) and seed >= 0 and float(seed).is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def slot_key(key: str, index: int) -> str:
    """The key of answer ``index`` of a bucket (``cache.bucket``): slot 0 is ``key`` itself, as without a
    bucket, the others ``key~1``, ``key~2``..."""
    return f"{key}~{index}" if index else key


def request_model(body: Any) -> str | None:
    """The normalised model name of a request body, if it has one."""
    model = body.get("model") if isinstance(body, dict) else None
    return normalize_model(model) if isinstance(model, str) and model.strip() else None
