"""Validation and answer building for generate/chat/embed, shared by /api and /v1 routes.

Each ``prepare_*`` function checks a native Ollama request exactly in the
order the real handler does (so the same error wins) and returns a
:class:`Turn` holding the complete answer; the route modules only decide how
to put it on the wire.  Errors are raised as :class:`RequestError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .fake_config import find_model, full_name
from .fake_text import Answer, compose_answer, count_tokens, embedding_vector, make_rng, timing_stats, token_ids
from .fake_wire import RequestError, check_field_types, go_quote, rfc3339_utc_now

_THINK_LEVELS = ("high", "medium", "low", "max")
_STR, _BOOL, _INT = ("string", "string"), ("bool", "bool"), ("int", "int")
_MAP = ("map[string]interface {}", "map[string]interface {}")


class Host(Protocol):
    """What request handlers need from the fake server's state."""

    def closing(self) -> bool: ...
    def stream_abandoned(self) -> None: ...
    def mark_loaded(self, model: Mapping[str, Any]) -> None: ...
    def mark_unloaded(self, model: Mapping[str, Any]) -> None: ...
    def loaded_models(self) -> list[tuple[dict[str, Any], float]]: ...
    def add_model(self, name: str) -> None: ...
    def install(self, model: Mapping[str, Any]) -> None: ...
    def remove_model(self, name: str) -> bool: ...


@dataclass
class Turn:
    """A validated generate/chat request and its answer (``stats`` in ns / tokens)."""

    kind: str  # "generate" or "chat"
    model: str  # the model name as the client spelled it; echoed back
    stream: bool
    answer: Answer = field(default_factory=lambda: Answer([], "stop", 0))
    stats: dict[str, int] = field(default_factory=dict)
    context: list[int] | None = None
    special: str | None = None  # "load"/"unload": a bare done reply with no generation


def parse_think(value: Any) -> bool | str | None:
    """Validate ``think`` like ``api.ThinkValue.UnmarshalJSON``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _THINK_LEVELS:
            return value
        raise RequestError(
            400, f'invalid think value: {go_quote(value)} (must be "high", "medium", "low", "max", true, or false)'
        )
    raise RequestError(400, 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)')


def _is_zero_keep_alive(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, str) and re.fullmatch(r"0+(\.0*)?[a-zµ]*", value) is not None


def _sampling_limits(options: Mapping[str, Any]) -> tuple[int | None, list[str]]:
    predict = options.get("num_predict")
    stop = options.get("stop")
    num_predict = int(predict) if isinstance(predict, (int, float)) and not isinstance(predict, bool) else None
    return num_predict, [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def _think_enabled(raw_model: str, caps: list[str], think: bool | str | None) -> bool:
    if "thinking" in caps:
        return think is None or bool(think)
    if think:
        raise RequestError(400, f"{go_quote(raw_model)} does not support thinking")
    return False


def _answer(
    cfg: Mapping[str, Any],
    entry: Mapping[str, Any],
    body: Mapping[str, Any],
    prompt: str,
    think: bool,
    tools: list[Any],
) -> tuple[Answer, dict[str, int]]:
    raw_options = body.get("options")
    options: Mapping[str, Any] = raw_options if isinstance(raw_options, Mapping) else {}
    num_predict, stop = _sampling_limits(options)
    fmt = body.get("format") or None
    answer = compose_answer(
        make_rng(entry["name"], body),
        tokens=int(cfg["tokens"]),
        think=think,
        fmt=fmt,
        tools=tools,
        num_predict=num_predict,
        stop=stop,
    )
    prompt_count = count_tokens(prompt)
    stats = timing_stats(prompt_eval_count=prompt_count, eval_count=answer.eval_count, options=options, config=cfg)
    return answer, stats


def prepare_generate(host: Host, cfg: Mapping[str, Any], body: Mapping[str, Any]) -> Turn:
    """Validate an ``/api/generate`` body and build its answer."""
    check_field_types(
        body,
        {"model": _STR, "prompt": _STR, "system": _STR, "suffix": _STR, "stream": _BOOL, "raw": _BOOL, "options": _MAP},
        "api.GenerateRequest",
    )
    think = parse_think(body.get("think"))
    raw_model = body.get("model") or ""
    entry = find_model(cfg, raw_model)
    if entry is None:
        raise RequestError(404, f"model '{raw_model}' not found")
    stream = body.get("stream") is not False
    prompt = body.get("prompt") or ""
    if not prompt and _is_zero_keep_alive(body.get("keep_alive")):
        host.mark_unloaded(entry)
        return Turn("generate", raw_model, stream, special="unload")
    think_on = _think_enabled(raw_model, entry["capabilities"], think)
    if "completion" not in entry["capabilities"]:
        raise RequestError(400, f"{go_quote(raw_model)} does not support generate")
    host.mark_loaded(entry)
    if not prompt:
        return Turn("generate", raw_model, stream, special="load")
    rendered = prompt if body.get("raw") else f"<|system|>{body.get('system') or ''}<|user|>{prompt}<|assistant|>"
    answer, stats = _answer(cfg, entry, body, rendered, think_on, [])
    context = None if body.get("raw") else token_ids(rendered + answer.thinking + answer.content)
    return Turn("generate", raw_model, stream, answer, stats, context)


def prepare_chat(host: Host, cfg: Mapping[str, Any], body: Mapping[str, Any], *, relax_thinking: bool = False) -> Turn:
    """Validate an ``/api/chat`` body and build its answer (a tool call when tools are offered).

    ``relax_thinking`` is what Ollama's Anthropic layer asks for: a model that cannot think ignores
    ``think`` instead of refusing the request.
    """
    check_field_types(
        body,
        {
            "model": _STR,
            "messages": ("slice", "[]api.Message"),
            "stream": _BOOL,
            "tools": ("slice", "api.Tools"),
            "options": _MAP,
        },
        "api.ChatRequest",
    )
    messages = body.get("messages") or []
    for msg in messages:
        if not isinstance(msg, Mapping):
            raise RequestError(
                400,
                "json: cannot unmarshal "
                f"{'string' if isinstance(msg, str) else 'number'} into Go struct field "
                "ChatRequest.messages of type api.Message",
            )
    think = parse_think(body.get("think"))
    raw_model = body.get("model") or ""
    if not raw_model.strip():
        raise RequestError(400, "model is required")
    entry = find_model(cfg, raw_model)
    if entry is None:
        raise RequestError(404, f"model '{raw_model}' not found")
    stream = body.get("stream") is not False
    if not messages and _is_zero_keep_alive(body.get("keep_alive")):
        host.mark_unloaded(entry)
        return Turn("chat", raw_model, stream, special="unload")
    caps = entry["capabilities"]
    tools = list(body.get("tools") or [])
    relaxed = relax_thinking and "thinking" not in caps
    think_on = _think_enabled(raw_model, caps, None if relaxed else think)
    if "completion" not in caps:
        raise RequestError(400, f"{go_quote(raw_model)} does not support chat")
    if tools and "tools" not in caps:
        raise RequestError(400, f"{full_name(entry['name'])} does not support tools")
    host.mark_loaded(entry)
    if not messages:
        return Turn("chat", raw_model, stream, special="load")
    rendered = "".join(f"<|{str(m.get('role', '')).lower()}|>{m.get('content') or ''}" for m in messages)
    rendered += "".join(str(t) for t in tools) + "<|assistant|>"
    wants_call = bool(tools) and str(messages[-1].get("role", "")).lower() != "tool"
    answer, stats = _answer(cfg, entry, body, rendered, think_on, tools if wants_call else [])
    return Turn("chat", raw_model, stream, answer, stats)


def _metrics(stats: Mapping[str, int]) -> dict[str, int]:
    """Go's ``Metrics`` with ``omitempty``: zero values are left out."""
    return {k: v for k, v in stats.items() if v}


def _message(content: str, thinking: str = "", tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def final_chunk(
    turn: Turn, *, content: str = "", thinking: str = "", tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``done: true`` object: the stream's last line, or the whole non-streamed body."""
    out: dict[str, Any] = {"model": turn.model, "created_at": rfc3339_utc_now()}
    if turn.kind == "generate":
        out["response"] = content
        if thinking:
            out["thinking"] = thinking
    else:
        out["message"] = _message(content, thinking, tool_calls)
    out["done"] = True
    out["done_reason"] = turn.special or turn.answer.done_reason
    if turn.special:
        return out
    if turn.context:
        out["context"] = turn.context
    out.update(_metrics(turn.stats))
    return out


def native_chunks(turn: Turn) -> Iterator[dict[str, Any]]:
    """The NDJSON objects of a streamed answer, stamped when each is produced."""
    if turn.special:
        yield final_chunk(turn)
        return
    for piece in turn.answer.pieces:
        out: dict[str, Any] = {"model": turn.model, "created_at": rfc3339_utc_now()}
        if turn.kind == "generate":
            out["response"] = piece.content
            if piece.thinking:
                out["thinking"] = piece.thinking
        else:
            out["message"] = _message(piece.content, piece.thinking, piece.tool_calls)
        out["done"] = False
        yield out
    yield final_chunk(turn)


def failed_after(cfg: Mapping[str, Any], turn: Turn) -> int | None:
    """How many native chunks of ``turn`` come before its runner fails (config ``error_after_chunks``), or
    None when the answer is whole: no failure is configured, the turn generates nothing, or it has no more
    chunks than that (its pieces and the final ``done`` chunk)."""
    after = cfg["error_after_chunks"]
    if after is None or turn.special or after >= len(turn.answer.pieces) + 1:
        return None
    return int(after)


def native_whole(turn: Turn) -> dict[str, Any]:
    """The single object of a ``"stream": false`` answer."""
    a = turn.answer
    return final_chunk(turn, content=a.content, thinking=a.thinking, tool_calls=a.tool_calls)


def embed_inputs(value: Any) -> list[str]:
    """``/api/embed`` ``input``: a string (empty = none) or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RequestError(400, "invalid input type")


def prepare_embed(host: Host, cfg: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an ``/api/embed`` body and return its response object."""
    check_field_types(body, {"model": _STR, "truncate": _BOOL, "dimensions": _INT, "options": _MAP}, "api.EmbedRequest")
    raw_model = body.get("model") or ""
    if not raw_model.strip():
        raise RequestError(404, f"model '{raw_model}' not found")
    inputs = embed_inputs(body.get("input"))
    entry = find_model(cfg, raw_model)
    if entry is None:
        raise RequestError(404, f"model {go_quote(raw_model)} not found, try pulling it first")
    host.mark_loaded(entry)
    if not inputs:
        return {"model": raw_model, "embeddings": []}
    dim = int(entry["embedding_length"])
    wanted = int(body.get("dimensions") or 0)
    dim = wanted if 0 < wanted < dim else dim
    prompt_count = sum(max(1, count_tokens(text)) for text in inputs)
    stats = timing_stats(prompt_eval_count=prompt_count, eval_count=0, options=body.get("options") or {}, config=cfg)
    return {
        "model": raw_model,
        "embeddings": [embedding_vector(text, dim) for text in inputs][: len(inputs) - int(cfg["embeddings_missing"])],
        "total_duration": stats["total_duration"],
        "load_duration": stats["load_duration"],
        "prompt_eval_count": prompt_count,
    }
