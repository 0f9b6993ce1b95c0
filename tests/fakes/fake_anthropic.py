"""Ollama's Anthropic-compatible ``POST /v1/messages``, as its ``anthropic`` package and middleware do it.

Ollama binds the Messages request, turns it into a native chat request (system and messages flattened,
``max_tokens`` as ``num_predict``, ``thinking`` or ``output_config.effort`` as ``think``, tools as
functions), runs it as ``/api/chat`` (answered here by :mod:`fake_turns`) and converts every native chunk
into SSE events (its ``StreamConverter``), or the whole native answer into one message. A model that
cannot think ignores ``thinking`` instead of refusing (``relax_thinking``).

Where Ollama differs from Anthropic's own API (a cache that merges these streams or synthesises them
must expect it):

- no ``ping`` events, no ``signature_delta``, and thinking blocks carry no ``signature``;
- ``stop_sequence`` is never sent (absent, not null), nor ``stop_reason`` in ``message_start``; a stop
  sequence reads ``end_turn`` (Ollama's ``stop``), any other unknown reason ``stop_sequence``;
- ``message_start`` has an estimate of the input tokens (the request's length / 4); ``message_delta``
  has Ollama's counts, ``input_tokens`` as well as ``output_tokens``;
- a tool call is a whole block at once: start, one ``input_json_delta`` with all its arguments, stop;
- a runner failing mid-answer sends no ``error`` event: its ``{"error"}`` line reads as an empty chunk
  and the stream ends with no ``message_delta`` nor ``message_stop`` (before the first chunk, or without
  streaming, the answer is a JSON error instead);
- errors have a ``request_id`` beside ``type`` and ``error``; a message without blocks has
  ``"content": null``.

Built-in ``web_search`` tools, which Ollama runs through ollama.com, are not imitated: they are dropped.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .fake_compat import answer_converted
from .fake_native import Handler
from .fake_openai import MiddlewareError, middleware_body
from .fake_turns import Host, prepare_chat
from .fake_wire import RequestError, go_json, json_response, json_type, sse_named

_STR, _BOOL, _INT, _NUM = ("string", "string"), ("bool", "bool"), ("int", "int"), ("int", "float64")
_FIELDS = {
    "model": _STR,
    "max_tokens": _INT,
    "messages": ("slice", "[]anthropic.MessageParam"),
    "stream": _BOOL,
    "temperature": _NUM,
    "top_p": _NUM,
    "top_k": _INT,
    "stop_sequences": ("slice", "[]string"),
    "tools": ("slice", "[]anthropic.Tool"),
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "": ""}


def _blocks(msg: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A message's content as blocks, as ``MessageParam.UnmarshalJSON`` reads it (a string is one text)."""
    if "content" not in msg:
        raise MiddlewareError(400, "unexpected end of JSON input")
    content = msg["content"]
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content or ""}]
    if not isinstance(content, list):
        raise MiddlewareError(
            400, f"json: cannot unmarshal {json_type(content)} into Go value of type []anthropic.ContentBlock"
        )
    for block in content:
        if not isinstance(block, Mapping):
            raise MiddlewareError(
                400, f"json: cannot unmarshal {json_type(block)} into Go value of type anthropic.ContentBlock"
            )
    return content


def _image(source: Any) -> None:
    if not isinstance(source, Mapping):
        raise MiddlewareError(400, "invalid image source")
    if source.get("type") != "base64":
        raise MiddlewareError(
            400, f"invalid image source type: {source.get('type') or ''}. Only base64 images are supported."
        )
    try:
        base64.b64decode(source.get("data") or "", validate=True)
    except (binascii.Error, ValueError) as err:
        raise MiddlewareError(400, f"invalid base64 image data: {err}") from None


def _result_text(content: Any) -> str:
    """A ``tool_result``'s content as text (its images are checked, then left out as the fake reads no images)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "image":
            _image(part.get("source"))
    return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")


def _convert(role: str, blocks: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One Anthropic message as native messages (``convertMessage``): a user's tool results come first."""
    role = role.lower()
    text, thinking, calls, results = "", "", [], []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text += block.get("text") or ""
        elif kind == "image":
            _image(block.get("source"))
        elif kind in ("tool_use", "server_tool_use"):
            for field in ("id", "name") if kind == "tool_use" else ():
                if not block.get(field):
                    raise MiddlewareError(400, f"tool_use block missing required '{field}' field")
            function = {"name": block.get("name", ""), "arguments": block.get("input") or {}}
            calls.append({"id": block.get("id", ""), "function": function})
        elif kind in ("tool_result", "web_search_tool_result"):
            content = block.get("content")
            text_of = _result_text(content) if kind == "tool_result" else go_json(content).decode()
            results.append({"role": "tool", "content": text_of, "tool_call_id": block.get("tool_use_id", "")})
        elif kind == "thinking":
            thinking = block.get("thinking") or thinking
    own: dict[str, Any] = {"role": role, "content": text}
    own.update({"thinking": thinking} if thinking else {})
    own.update({"tool_calls": calls} if calls else {})
    mine = [own] if text or calls or thinking else []
    return results + mine if role == "user" else mine + results


def _tools(raw: list[Any]) -> list[dict[str, Any]]:
    tools = []
    for tool in raw:
        if str(tool.get("type", "")).startswith("web_search"):
            continue  # Ollama's web search is not imitated
        schema = tool.get("input_schema")
        if schema is not None and not isinstance(schema, Mapping):
            raise MiddlewareError(
                400,
                f"invalid input_schema for tool {go_json(tool.get('name', '')).decode()}: json: cannot unmarshal "
                f"{json_type(schema)} into Go value of type api.ToolFunctionParameters",
            )
        function = {
            "name": tool.get("name", ""),
            "description": tool.get("description", ""),
            "parameters": schema or {},
        }
        tools.append({"type": "function", "function": function})
    return tools


def _think(body: Mapping[str, Any]) -> bool | str | None:
    kind = (body.get("thinking") or {}).get("type")
    if kind in ("enabled", "disabled"):
        return kind == "enabled"
    effort = str((body.get("output_config") or {}).get("effort") or "").strip().lower()
    effort = "high" if effort == "xhigh" else effort
    return effort if effort in ("high", "medium", "low", "max") else None


def to_native(body: Mapping[str, Any], blocks: list[list[Mapping[str, Any]]]) -> dict[str, Any]:
    """The native chat request of a Messages request (``FromMessagesRequest``); ``blocks`` per message."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list):
        texts = [b.get("text") for b in system if isinstance(b, Mapping) and b.get("type") == "text"]
        system = "".join(t for t in texts if isinstance(t, str))
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    for msg, content in zip(body["messages"], blocks, strict=True):
        messages += _convert(str(msg.get("role", "")), content)
    options: dict[str, Any] = {"num_predict": body["max_tokens"]}
    for key, option in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
        if body.get(key) is not None:
            options[option] = body[key]
    if body.get("stop_sequences"):
        options["stop"] = body["stop_sequences"]
    return {
        "model": body["model"],
        "messages": messages,
        "options": options,
        "stream": bool(body.get("stream")),
        "tools": _tools(body.get("tools") or []),
        "think": _think(body),
    }


def estimate_input_tokens(body: Mapping[str, Any], blocks: list[list[Mapping[str, Any]]]) -> int:
    """``message_start``'s input tokens: Ollama's estimate, the request's length in bytes / 4 (at least 1).

    Text and thinking count by their length, tool blocks by their JSON; a tool's schema by its compact
    JSON (Ollama counts the bytes the client sent, so a client's spacing can make a few tokens' difference).
    """

    def size(block: Any) -> int:
        if not isinstance(block, Mapping):
            return 0
        n = sum(len(str(block.get(key) or "").encode()) for key in ("text", "thinking"))
        return n + (len(go_json(block)) if block.get("type") in ("tool_use", "tool_result") else 0)

    system = body.get("system")
    total = len(system.encode()) if isinstance(system, str) else sum(size(b) for b in system or [])
    for msg, content in zip(body["messages"], blocks, strict=True):
        total += len(str(msg.get("role", "")).encode()) + sum(size(b) for b in content)
    for tool in body.get("tools") or []:
        schema = tool.get("input_schema")
        total += len(str(tool.get("name", "")).encode()) + len(str(tool.get("description", "")).encode())
        total += len(go_json(schema)) if schema is not None else 0
    return max(total // 4, 1)


def _stop_reason(reason: str, tool_calls: bool) -> str:
    return "tool_use" if tool_calls else _STOP_REASONS.get(reason, "stop_sequence")


def _usage(chunk: Mapping[str, Any]) -> dict[str, int]:
    return {"input_tokens": chunk.get("prompt_eval_count", 0), "output_tokens": chunk.get("eval_count", 0)}


def to_message(ident: str, whole: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streamed answer (``ToMessagesResponse``) from the native ``stream: false`` object."""
    message = whole.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("thinking"):
        content.append({"type": "thinking", "thinking": message["thinking"]})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call["function"]
        content.append({"type": "tool_use", "id": call["id"], "name": function["name"], "input": function["arguments"]})
    out: dict[str, Any] = {"id": ident, "type": "message", "role": "assistant", "model": whole["model"]}
    out["content"] = content or None
    reason = _stop_reason(whole.get("done_reason", ""), bool(message.get("tool_calls")))
    return {**out, **({"stop_reason": reason} if reason else {}), "usage": _usage(whole)}


class StreamConverter:
    """Native chunks to Anthropic SSE events, block by block, as Ollama's ``StreamConverter`` does."""

    def __init__(self, ident: str, model: str, estimated_input_tokens: int) -> None:
        self.ident, self.model, self.estimate = ident, model, estimated_input_tokens
        self.index = 0
        self.started = False
        self.thinking, self.thinking_done, self.text = False, False, False
        self.calls_sent: set[str] = set()

    def _event(self, kind: str, **data: Any) -> bytes:
        return sse_named(kind, {"type": kind, **data})

    def _stop(self, *, next_block: bool = True) -> bytes:
        frame = self._event("content_block_stop", index=self.index)
        self.index += 1 if next_block else 0
        return frame

    def process(self, chunk: Mapping[str, Any]) -> list[bytes]:
        """The events of one native chunk (an ``{"error"}`` line reads as an empty chunk: none)."""
        out: list[bytes] = []
        message = chunk.get("message") or {}
        if not self.started:
            self.started = True
            usage = {"input_tokens": chunk.get("prompt_eval_count") or self.estimate, "output_tokens": 0}
            head = {"id": self.ident, "type": "message", "role": "assistant", "model": self.model}
            out.append(self._event("message_start", message={**head, "content": [], "usage": usage}))
        if message.get("thinking") and not self.thinking_done:
            if self.text:
                out.append(self._stop())
                self.text = False
            if not self.thinking:
                self.thinking = True
                block = {"type": "thinking", "thinking": ""}
                out.append(self._event("content_block_start", index=self.index, content_block=block))
            delta = {"type": "thinking_delta", "thinking": message["thinking"]}
            out.append(self._event("content_block_delta", index=self.index, delta=delta))
        if message.get("content"):
            if self.thinking and not self.thinking_done:
                self.thinking_done = True
                out.append(self._stop())
            if not self.text:
                self.text = True
                block = {"type": "text", "text": ""}
                out.append(self._event("content_block_start", index=self.index, content_block=block))
            delta = {"type": "text_delta", "text": message["content"]}
            out.append(self._event("content_block_delta", index=self.index, delta=delta))
        for call in message.get("tool_calls") or []:
            if call["id"] in self.calls_sent:
                continue
            if self.thinking and not self.thinking_done:
                self.thinking_done = True
                out.append(self._stop())
            if self.text:
                out.append(self._stop())
                self.text = False
            block = {"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": go_json(call["function"]["arguments"]).decode()}
            out.append(self._event("content_block_start", index=self.index, content_block=block))
            out.append(self._event("content_block_delta", index=self.index, delta=delta))
            out.append(self._stop())
            self.calls_sent.add(call["id"])
        if chunk.get("done"):
            if self.text or (self.thinking and not self.thinking_done):
                out.append(self._stop(next_block=False))
            reason = _stop_reason(chunk.get("done_reason", ""), bool(self.calls_sent))
            out.append(
                self._event("message_delta", delta={"stop_reason": reason} if reason else {}, usage=_usage(chunk))
            )
            out.append(self._event("message_stop"))
        return out


async def messages(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /v1/messages``: one message, or its SSE events with ``"stream": true``."""
    body = await middleware_body(request, "anthropic.MessagesRequest", _FIELDS)
    for key, kind in (("messages", "anthropic.MessageParam"), ("tools", "anthropic.Tool")):
        for item in body.get(key) or []:
            if not isinstance(item, Mapping):
                raise MiddlewareError(
                    400,
                    f"json: cannot unmarshal {json_type(item)} into Go struct field "
                    f"MessagesRequest.{key} of type {kind}",
                )
    blocks = [_blocks(m) for m in body.get("messages") or []]
    if not body.get("model"):
        raise MiddlewareError(400, "model is required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] <= 0:
        raise MiddlewareError(400, "max_tokens is required and must be positive")
    if not body.get("messages"):
        raise MiddlewareError(400, "messages is required")
    ident = f"msg_{secrets.token_hex(12)}"
    turn = prepare_chat(host, cfg, to_native(body, blocks), relax_thinking=True)
    return await answer_converted(
        host,
        cfg,
        turn,
        stream=body.get("stream") is True,
        whole=lambda native: to_message(ident, native),
        convert=StreamConverter(ident, body["model"], estimate_input_tokens(body, blocks)).process,
    )


def anthropic_error(err: RequestError) -> Response:
    """Anthropic's error shape, with Ollama's ``request_id``: the middleware's own through gin's ``c.JSON``,
    the handler's re-encoded by the response writer (a bare JSON content type and a trailing newline)."""
    error = {"type": _ERROR_TYPES.get(err.status, "api_error"), "message": err.message}
    body = {"type": "error", "error": error, "request_id": f"req_{secrets.token_hex(12)}"}
    if isinstance(err, MiddlewareError):
        return json_response(body, err.status)
    return json_response(body, err.status, newline=True, media_type="application/json")


#: (path, methods, handler) of the Anthropic-compatible route.
ROUTES: list[tuple[str, list[str], Handler]] = [("/v1/messages", ["POST"], messages)]
