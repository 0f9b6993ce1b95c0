"""OpenAI-compatible ``/v1/*`` routes, translated the way Ollama's middleware does it.

Requests are converted to native bodies, answered by :mod:`fake_turns`, and
the native answer is re-shaped into ``chat.completion`` / ``text_completion``
objects or SSE chunk streams (role on the first delta, an empty-delta finish
chunk, an optional usage chunk, then ``data: [DONE]``).
"""

from __future__ import annotations

import base64
import random
import struct
import time
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .fake_config import display_shortest, find_model, parse_name
from .fake_native import Handler, sorted_models
from .fake_text import Answer, Piece
from .fake_turns import Host, Turn, failed_after, prepare_chat, prepare_embed, prepare_generate
from .fake_wire import (
    SSE,
    SSE_DONE,
    RequestError,
    check_field_types,
    go_json,
    json_response,
    openai_error,
    pause,
    read_json_object,
    sse_event,
    stream_response,
    unix_seconds,
)

#: ``reasoning_effort`` / ``reasoning.effort`` to native ``think`` (``thinkFromReasoningEffort``).
REASONING_EFFORT: dict[str, bool | str | None] = {
    "": None,
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}
_STR, _BOOL, _INT, _NUM = ("string", "string"), ("bool", "bool"), ("int", "int"), ("int", "float64")


class MiddlewareError(RequestError):
    """Rejected by the translating middleware (body without Go's trailing newline)."""


async def middleware_body(request: Request, struct_name: str, fields: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Bind the body like the middleware's ``ShouldBindJSON`` (errors are middleware errors)."""
    try:
        body = await read_json_object(request, struct_name, empty_message="EOF")
        check_field_types(body, fields, struct_name)
    except RequestError as err:
        raise MiddlewareError(err.status, err.message) from None
    return body


def _stop_list(stop: Any, *, strict: bool) -> list[str] | None:
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list):
        return None
    if strict:
        for item in stop:
            if not isinstance(item, str):
                kind = "float64" if isinstance(item, (int, float)) else type(item).__name__
                raise MiddlewareError(400, f"invalid type for 'stop' field: {kind}")
    return [s for s in stop if isinstance(s, str)]


def _options(body: Mapping[str, Any], *, completion: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    stop = _stop_list(body.get("stop"), strict=completion)
    if stop is not None:
        options["stop"] = stop
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    options["temperature"] = body["temperature"] if body.get("temperature") is not None else 1.0
    if body.get("seed") is not None:
        options["seed"] = body["seed"]
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key) is not None or completion:
            options[key] = body.get(key) or 0
    top_p = body.get("top_p")
    options["top_p"] = (top_p or 1.0) if completion else (1.0 if top_p is None else top_p)
    return options


def _messages(raw: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for msg in raw:
        if not isinstance(msg, Mapping):
            raise MiddlewareError(400, "invalid message format")
        role, content = msg.get("role", ""), msg.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping) or part.get("type") not in ("text", "image_url", "input_audio"):
                    raise MiddlewareError(400, "invalid message format")
                out.append({"role": role, "content": part.get("text", "") if part["type"] == "text" else ""})
        elif msg.get("tool_calls") is None:
            raise MiddlewareError(400, "invalid message content type: <nil>")
        else:
            out.append({"role": role, "content": ""})
    return out


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.get("id", ""),
            "index": c["function"]["index"],
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": go_json(c["function"]["arguments"]).decode()},
        }
        for c in calls
    ]


def _usage(turn: Turn) -> dict[str, int]:
    prompt, completion = turn.stats.get("prompt_eval_count", 0), turn.stats.get("eval_count", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _reason(turn: Turn, tool_calls: bool) -> str:
    reason = turn.special or turn.answer.done_reason
    return "tool_calls" if reason == "stop" and tool_calls else reason


def _chat_frames(turn: Turn, ident: str, include_usage: bool, failed: int | None = None) -> Iterator[bytes]:
    created: int | None = None
    head = {"id": ident, "object": "chat.completion.chunk"}
    pieces = turn.answer.pieces or [Piece()]
    for index, piece in enumerate(pieces[:failed]):
        created = created or int(time.time())
        delta: dict[str, Any] = {"role": "assistant"} if index == 0 else {}
        delta["content"] = piece.content
        if piece.thinking:
            delta["reasoning"] = piece.thinking
        if piece.tool_calls:
            delta["tool_calls"] = _tool_calls(piece.tool_calls)
        yield sse_event(
            {
                **head,
                "created": created,
                "model": turn.model,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
        )
    if failed is not None:  # the runner's {"error"} line, read as an empty ChatResponse; then the stream ends
        choice = {"index": 0, "delta": {"content": ""}, "finish_reason": None}
        yield sse_event(
            {**head, "created": created, "model": "", "system_fingerprint": "fp_ollama", "choices": [choice]}
        )
        return
    finish = {
        **head,
        "created": created,
        "model": turn.model,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "delta": {}, "finish_reason": _reason(turn, bool(turn.answer.tool_calls))}],
    }
    yield sse_event(finish)
    if include_usage:
        yield sse_event({**finish, "choices": [], "usage": _usage(turn)})
    yield SSE_DONE


def _completion_frames(turn: Turn, ident: str, include_usage: bool, failed: int | None = None) -> Iterator[bytes]:
    zero = {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}} if include_usage else {}
    texts: list[tuple[str, str | None]] = [(p.content, None) for p in turn.answer.pieces]
    for index, (text, reason) in enumerate(texts + [("", _reason(turn, False))]):
        failing = index == failed  # the runner's {"error"} line, read as an empty GenerateResponse
        chunk = {
            "id": ident,
            "object": "text_completion",
            "created": int(time.time()),
            "choices": [{"text": "" if failing else text, "index": 0, "finish_reason": None if failing else reason}],
            "model": "" if failing else turn.model,
            "system_fingerprint": "fp_ollama",
        }
        yield sse_event({**chunk, **zero})
        if failing:
            return
    if include_usage:
        yield sse_event({**chunk, "choices": [], "usage": _usage(turn)})
    yield SSE_DONE


async def _respond(host: Host, cfg: Mapping[str, Any], turn: Turn, body: Mapping[str, Any], chat: bool) -> Response:
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{random.randrange(999)}"
    usage = bool((body.get("stream_options") or {}).get("include_usage")) and not cfg["ignore_include_usage"]
    delay = float(cfg["chunk_delay_ms"])
    failed = failed_after(cfg, turn)
    if failed is not None and (failed == 0 or body.get("stream") is not True):
        raise RequestError(500, str(cfg["fail_message"]))  # the handler's c.JSON, reshaped by the writer
    if body.get("stream") is True:
        frames = (_chat_frames if chat else _completion_frames)(turn, ident, usage, failed)
        return stream_response(
            frames,
            media_type=SSE,
            delay_ms=delay,
            drop_after=cfg["drop_after_chunks"],
            closing=host.closing,
            abandoned=host.stream_abandoned,
        )
    await pause(delay * len(turn.answer.pieces), host.closing)
    a: Answer = turn.answer
    head = {
        "id": ident,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": turn.model,
        "system_fingerprint": "fp_ollama",
    }
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": a.content}
        if a.thinking:
            message["reasoning"] = a.thinking
        if a.tool_calls:
            message["tool_calls"] = _tool_calls(a.tool_calls)
        choice = {"index": 0, "message": message, "finish_reason": _reason(turn, bool(a.tool_calls))}
    else:
        choice = {"text": a.content, "index": 0, "finish_reason": _reason(turn, False)}
    return json_response(
        {**head, "choices": [choice], "usage": _usage(turn)}, newline=True, media_type="application/json"
    )


async def chat_completions(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    body = await middleware_body(
        request,
        "openai.ChatCompletionRequest",
        {
            "model": _STR,
            "messages": ("slice", "[]openai.Message"),
            "stream": _BOOL,
            "max_tokens": _INT,
            "seed": _INT,
            "temperature": _NUM,
            "top_p": _NUM,
            "tools": ("slice", "[]api.Tool"),
        },
    )
    if not body.get("messages"):
        raise MiddlewareError(400, "[] is too short - 'messages'")
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort") or ""
    if effort not in REASONING_EFFORT:
        raise MiddlewareError(
            400,
            f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", '
            '"high", "xhigh", "ultra", "max", or "none")',
        )
    fmt = body.get("response_format") or {}
    native = {
        "model": body.get("model", ""),
        "messages": _messages(body["messages"]),
        "format": "json" if fmt.get("type") == "json_object" else (fmt.get("json_schema") or {}).get("schema"),
        "options": _options(body, completion=False),
        "stream": bool(body.get("stream")),
        "tools": body.get("tools"),
        "think": REASONING_EFFORT[effort],
    }
    return await _respond(host, cfg, prepare_chat(host, cfg, native), body, chat=True)


async def completions(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /v1/completions``."""
    body = await middleware_body(
        request,
        "openai.CompletionRequest",
        {"model": _STR, "prompt": _STR, "stream": _BOOL, "max_tokens": _INT, "seed": _INT, "suffix": _STR},
    )
    native = {
        "model": body.get("model", ""),
        "prompt": body.get("prompt", ""),
        "options": _options(body, completion=True),
        "stream": bool(body.get("stream")),
        "suffix": body.get("suffix", ""),
    }
    return await _respond(host, cfg, prepare_generate(host, cfg, native), body, chat=False)


async def embeddings(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /v1/embeddings`` (``encoding_format`` float or base64 little-endian float32)."""
    body = await middleware_body(
        request, "openai.EmbedRequest", {"model": _STR, "dimensions": _INT, "encoding_format": _STR}
    )
    encoding = body.get("encoding_format") or ""
    if encoding and encoding.lower() not in ("float", "base64"):
        raise MiddlewareError(
            400, f"Invalid value for 'encoding_format' = {encoding}. Supported values: ['float', 'base64']."
        )
    inputs = [""] if body.get("input") == "" else body.get("input")
    if inputs is None or inputs == []:
        raise MiddlewareError(400, "invalid input")
    native = prepare_embed(
        host, cfg, {"model": body.get("model", ""), "input": inputs, "dimensions": body.get("dimensions") or 0}
    )

    def encode(vector: list[float]) -> Any:
        if encoding.lower() != "base64":
            return vector
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

    data = [{"object": "embedding", "embedding": encode(v), "index": i} for i, v in enumerate(native["embeddings"])]
    tokens = native.get("prompt_eval_count", 0)
    return json_response(
        {
            "object": "list",
            "data": data or None,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        newline=True,
        media_type="application/json",
    )


def _model_object(model_id: str, modified_at: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": unix_seconds(modified_at),
        "owned_by": parse_name(model_id)[1],
    }


async def models(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET /v1/models`` (``data`` is null when nothing is installed, as in Go)."""
    data = [_model_object(e["name"], e["modified_at"]) for e in sorted_models(cfg)]
    return json_response({"object": "list", "data": data or None}, newline=True, media_type="application/json")


async def retrieve_model(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET /v1/models/{model}``."""
    name = request.path_params["model"]
    entry = find_model(cfg, name)
    if entry is None:
        raise RequestError(404, f"model '{display_shortest(name)}' not found")
    return json_response(_model_object(name, entry["modified_at"]), newline=True, media_type="application/json")


def v1_error(err: RequestError) -> Response:
    """How the /v1 routes report a :class:`RequestError`."""
    return openai_error(err.status, err.message, from_handler=not isinstance(err, MiddlewareError))


#: (path, methods, handler) for every OpenAI-compatible route.
ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/v1/chat/completions", ["POST"], chat_completions),
    ("/v1/completions", ["POST"], completions),
    ("/v1/embeddings", ["POST"], embeddings),
    ("/v1/models", ["GET"], models),
    ("/v1/models/{model}", ["GET"], retrieve_model),
]
