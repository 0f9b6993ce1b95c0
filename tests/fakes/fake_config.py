"""Configuration of the fake Ollama server and its catalogue of installed models.

Everything tunable lives in :data:`DEFAULT_CONFIG`; ``FakeOllama.configure`` and
``POST /_fake/config`` merge into a copy of it.  Model names are matched the way
Ollama matches them (``llama3.2`` == ``llama3.2:latest`` ==
``registry.ollama.ai/library/LLAMA3.2:latest``).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping
from typing import Any

DEFAULT_MODELS: list[dict[str, Any]] = [
    {
        "name": "llama3.2:latest",
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "size": 2019393189,  # bytes on disk
        "modified_at": "2025-06-03T09:12:45.553081147+02:00",
        "capabilities": ["completion", "tools"],
        "context_length": 131072,  # tokens
        "embedding_length": 8,  # floats per embedding vector
    },
    {
        "name": "qwen3:0.6b",
        "family": "qwen3",
        "parameter_size": "751.63M",
        "quantization_level": "Q4_K_M",
        "size": 522653767,
        "modified_at": "2025-06-02T18:40:01.120466398+02:00",
        "capabilities": ["completion", "tools", "thinking"],
        "context_length": 40960,
        "embedding_length": 8,
    },
    {
        "name": "nomic-embed-text:latest",
        "family": "nomic-bert",
        "parameter_size": "137M",
        "quantization_level": "F16",
        "size": 274302450,
        "modified_at": "2025-06-01T07:30:00.5+02:00",
        "capabilities": ["embedding"],
        "context_length": 2048,
        "embedding_length": 16,
    },
]

#: Default configuration; the comment on each key gives its unit.
DEFAULT_CONFIG: dict[str, Any] = {
    # list of installed models: dicts like DEFAULT_MODELS or bare names (str)
    "models": DEFAULT_MODELS,
    # HTTP status for injected failures; None disables failure injection
    "fail_status": None,
    # error message sent with fail_status and error_after_chunks (Ollama: {"error": msg}; /v1: OpenAI shape;
    # /v1/messages: Anthropic shape)
    "fail_message": "llama runner process has terminated: exit status 2",
    # number of inference calls still to fail (count); None = fail every call
    "fail_count": None,
    # streamed answers: frames (NDJSON lines / SSE events) sent before the TCP
    # connection is aborted mid-body; None = never abort
    "drop_after_chunks": None,
    # chat and generate answers: native chunks (Ollama's own /api lines, one per token) the runner produces
    # before it fails with fail_message, as a runner crashing mid-answer does; None = never. A streamed
    # answer then ends normally (no TCP abort) the way each API ends a failed one: /api/* with an
    # {"error": msg} line; /v1/chat/completions and /v1/completions with one empty chunk and no
    # finish chunk or [DONE]; /v1/messages and /v1/responses with nothing more (no message_stop, no
    # response.completed: Ollama sends no error event there). With 0, or without streaming, the
    # answer is a 500 error in the route's error shape instead. An answer of no more chunks is whole
    "error_after_chunks": None,
    # OpenAI streams never carry usage, whatever stream_options asks: an upstream such as llama-cpp-python's
    # server, which ignores include_usage (Ollama honours it)
    "ignore_include_usage": False,
    # vectors left out of the end of each /api/embed and /v1/embeddings answer: a faulty upstream whose
    # answer does not hold one vector per input
    "embeddings_missing": 0,
    # pause between streamed frames (milliseconds); also the simulated per-token time
    "chunk_delay_ms": 0,
    # pause before the response headers of inference calls (milliseconds)
    "first_byte_delay_ms": 0,
    # accept every request but never answer until reset(), hang=False or shutdown (bool)
    "hang": False,
    # the build a pull fetches, by model name: {name: digest (64 hex digits)}; a model not named here pulls
    # the build it has (a new model: its default digest), as a registry with no newer build would
    "registry": {},
    # tokens generated per answer (count) unless capped by num_predict / max_tokens
    "tokens": 12,
    # False makes /api/tags answer 404 like an OpenAI-only server (bool)
    "tags_enabled": True,
    # value served by GET /api/version (str); None answers 404 there, as an OpenAI-only server (llama.cpp's, LM
    # Studio, vLLM) does
    "version": "0.12.0",
    # the models folder, as Ollama's OLLAMA_MODELS: /api/show names each model's file in its blobs/ folder
    # (str path); None = ~/.ollama/models, Ollama's default
    "models_dir": None,
    # generation speed by thread count: {num_thread: tokens per second}, keys ints or their decimal
    # strings (JSON); when set, a request's options.num_thread shapes the reported eval_duration and
    # prompt_eval_duration (see fake_text.timing_stats); None = the chunk_delay_ms timing
    "speed_curve": None,
}

#: Routes whose answers a caching proxy would cache; fail_* only applies to these.
INFERENCE_PATHS: frozenset[str] = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/responses",
    }
)


def default_config() -> dict[str, Any]:
    """A deep copy of :data:`DEFAULT_CONFIG` that callers may mutate."""
    return copy.deepcopy(DEFAULT_CONFIG)


def merge_config(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``current`` updated with ``changes``; unknown keys raise ``KeyError``, a bad
    ``speed_curve`` ``ValueError``."""
    unknown = sorted(set(changes) - set(DEFAULT_CONFIG))
    if "registry" in changes and not isinstance(changes["registry"], Mapping):
        raise ValueError("registry must map model names to digests")
    if unknown:
        raise KeyError(f"unknown fake config key(s): {', '.join(unknown)}")
    if changes.get("speed_curve") is not None:
        check_speed_curve(changes["speed_curve"])
    merged = copy.deepcopy(dict(current))
    merged.update(copy.deepcopy(dict(changes)))
    return merged


def check_speed_curve(curve: object) -> None:
    """Raise ``ValueError`` unless ``curve`` is a non-empty mapping of whole thread counts (at least 1,
    as ints or decimal strings) to speeds in tokens per second above 0."""
    if not isinstance(curve, Mapping) or not curve:
        raise ValueError("speed_curve must be a non-empty mapping of num_thread to tokens per second")
    for key, speed in curve.items():
        if isinstance(key, bool) or not (str(key).strip().isascii() and str(key).strip().isdigit()) or int(key) < 1:
            raise ValueError(f"speed_curve key {key!r} is not a thread count of at least 1")
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError(f"speed_curve speed {speed!r} for {key} threads is not a number above 0")


def parse_name(raw: str) -> tuple[str, str, str, str]:
    """Split a model reference into (host, namespace, model, tag) with Ollama's defaults."""
    s = raw.strip()
    tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, _, tag = s.rpartition(":")
    parts = s.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else ""
    host = "/".join(parts[:-2]) if len(parts) >= 3 else ""
    host = host.split("://", 1)[-1]
    return (host or "registry.ollama.ai", namespace or "library", model, tag or "latest")


def display_shortest(raw: str) -> str:
    """Ollama's shortest display form: ``llama3.2`` -> ``llama3.2:latest``."""
    host, namespace, model, tag = parse_name(raw)
    if host.lower() != "registry.ollama.ai":
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace.lower() != "library":
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


def full_name(raw: str) -> str:
    """Fully qualified name, e.g. ``registry.ollama.ai/library/llama3.2:latest``."""
    host, namespace, model, tag = parse_name(raw)
    return f"{host}/{namespace}/{model}:{tag}"


def model_entry(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """Fill in defaults for one configured model (a bare name or a partial dict)."""
    entry: dict[str, Any] = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = display_shortest(str(entry["name"]))
    entry["name"] = name
    entry.setdefault("family", parse_name(name)[2].split(".")[0].rstrip("0123456789") or "llama")
    entry.setdefault("parameter_size", "1B")
    entry.setdefault("quantization_level", "Q4_K_M")
    entry.setdefault("size", 1_000_000_000)
    entry.setdefault("modified_at", "2025-06-01T00:00:00Z")
    entry.setdefault("capabilities", ["completion", "tools"])
    entry.setdefault("context_length", 4096)
    entry.setdefault("embedding_length", 8)
    entry.setdefault("digest", hashlib.sha256(f"fake-ollama:{name}".encode()).hexdigest())
    # the digest of its model file (blobs/sha256-<blob>): two models created from one file share it
    entry.setdefault("blob", hashlib.sha256(f"fake-ollama-blob:{name}".encode()).hexdigest())
    entry.setdefault("runner_mib", 0)  # memory its runner process holds (MiB), under FAKE_OLLAMA_RUNNERS=1
    return entry


def blob_path(config: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The path of a model's file, as Ollama's Modelfile and its runner's command line name it."""
    models = config["models_dir"] or os.path.join(os.path.expanduser("~"), ".ollama", "models")
    return os.path.join(models, "blobs", f"sha256-{entry['blob']}")


def registry_digest(config: Mapping[str, Any], raw: str) -> str | None:
    """The digest a pull of ``raw`` fetches, if the registry (config ``registry``) names it."""
    wanted = display_shortest(raw).lower()
    for name, digest in config["registry"].items():
        if display_shortest(name).lower() == wanted:
            return str(digest)
    return None


def fresh_digest(seed: str) -> str:
    """A digest for a new build made from ``seed`` (64 hex digits, as Ollama's)."""
    return hashlib.sha256(f"fake-ollama-build:{seed}".encode()).hexdigest()


def installed_models(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All configured models with defaults filled in, in configuration order."""
    return [model_entry(spec) for spec in config["models"]]


def find_model(config: Mapping[str, Any], raw: str) -> dict[str, Any] | None:
    """The installed model ``raw`` refers to (case-insensitive, defaults applied), or None."""
    if not raw.strip():
        return None
    wanted = tuple(part.lower() for part in parse_name(raw))
    for entry in installed_models(config):
        if tuple(part.lower() for part in parse_name(entry["name"])) == wanted:
            return entry
    return None
