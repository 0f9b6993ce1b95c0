"""A whole (non-streamed) answer turned into the stream the same request gets when streaming (pure).

The stream is the one Ollama would send for that answer, in fewer chunks:

- native ``/api/chat`` and ``/api/generate`` (NDJSON): one line with the text (``message`` with its
  content, thinking and tool calls, or ``response`` and ``thinking``; the logprobs), ``done: false``,
  then the final ``done: true`` line carrying what the whole answer carries besides (statistics,
  ``done_reason``, ``context``; a generate's tool calls, which Ollama sends on its final line), its
  ``message.content`` or ``response`` empty, as Ollama ends a stream.
- OpenAI ``/v1/chat/completions`` (SSE): per choice, a chunk opening with the role (the reasoning in a
  chunk of its own before the content, as Ollama splits them), the content and tool calls, then a
  finish chunk with an empty delta and the ``finish_reason``; ``/v1/completions``: a text chunk, then
  an empty one with the ``finish_reason``. A usage chunk (no choices) only when the request asked
  ``stream_options.include_usage``, with the zero usage Ollama puts on every completion chunk then;
  and ``data: [DONE]``.

Anthropic's ``/v1/messages`` and the Responses API's ``/v1/responses`` are synthesised by
:mod:`core.cache.request.anthropic_messages` and :mod:`core.cache.request.openai_responses`. Embedding routes never
stream, so they have no synthesis.
"""

from __future__ import annotations

import json
from typing import Any

from core.cache.request import anthropic_messages, openai_responses
from core.cache.request.keys import ROUTES
from core.cache.request.wire import Unmergeable, dumps

_NATIVE_HEAD = ("model", "remote_model", "remote_host", "created_at")
_OPENAI_HEAD = ("id", "object", "created", "model", "system_fingerprint")
SSE_DONE = b"data: [DONE]\n\n"
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def synthesise(route_path: str, body: bytes, include_usage: bool = False) -> list[bytes]:
    """The stream for the whole answer ``body`` on ``route_path``: one element per NDJSON line or SSE event.

    ``include_usage`` is the request's ``stream_options.include_usage`` (OpenAI routes only).
    Raises :class:`~core.cache.request.merge.Unmergeable` for a body that is not an answer in the route's format.
    """
    route = ROUTES.get(route_path)
    if route is None or route.kind not in ("chat", "generate"):
        raise Unmergeable(f"{route_path} has no stream mode")
    try:
        if route.api == "anthropic":
            return anthropic_messages.synthesise(body)
        if route.api == "responses":
            return openai_responses.synthesise(body)
        whole = json.loads(body)
        if not isinstance(whole, dict):
            raise Unmergeable("the answer is not a JSON object")
        if route.api == "ollama":
            return [dumps(line) + b"\n" for line in _native(route.kind, whole)]
        chunks = _openai_chat(whole) if route.kind == "chat" else _openai_completion(whole, include_usage)
        if include_usage:
            chunks.append({**chunks[-1], "choices": [], "usage": whole.get("usage") or ZERO_USAGE})
        return [b"data: " + dumps(chunk) + b"\n\n" for chunk in chunks] + [SSE_DONE]
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise Unmergeable(f"unreadable answer: {error}") from None


def _head(whole: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: whole[name] for name in names if name in whole}


def _native(kind: str, whole: dict[str, Any]) -> list[dict[str, Any]]:
    final = dict(whole)
    part: dict[str, Any] = {}
    if kind == "chat":
        message = dict(whole.get("message") or {})
        role = message.get("role") or "assistant"
        part = {"message": message}
        final["message"] = {"role": role, "content": ""}
    else:
        part = {"response": whole.get("response") or ""}
        if whole.get("thinking"):
            part["thinking"] = whole["thinking"]
        final["response"] = ""
        final.pop("thinking", None)
    if whole.get("logprobs"):
        part["logprobs"] = whole["logprobs"]
        del final["logprobs"]
    said = part.get("message", part)
    if not any(said.get(name) for name in ("content", "response", "thinking", "tool_calls")) and "logprobs" not in part:
        return [final]
    opening = {**_head(whole, _NATIVE_HEAD), **{k: v for k, v in part.items() if k != "logprobs"}, "done": False}
    if "logprobs" in part:
        opening["logprobs"] = part["logprobs"]
    return [opening, final]


def _chunk(
    whole: dict[str, Any], index: int, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish_reason}
    if logprobs:
        choice["logprobs"] = logprobs
    return {**_head(whole, _OPENAI_HEAD), "object": "chat.completion.chunk", "choices": [choice]}


def _openai_chat(whole: dict[str, Any]) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for choice in whole.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        opening: dict[str, Any] = {"role": message.get("role") or "assistant"}
        content, reasoning, calls = message.get("content") or "", message.get("reasoning"), message.get("tool_calls")
        logprobs = choice.get("logprobs")
        if reasoning and (content or calls):
            chunks.append(_chunk(whole, index, {**opening, "reasoning": reasoning}, logprobs=logprobs))
            opening, logprobs = {}, None
        delta = {**opening, "content": content}
        if reasoning and "role" in opening:
            delta["reasoning"] = reasoning
        if calls:
            delta["tool_calls"] = calls
        chunks.append(_chunk(whole, index, delta, logprobs=logprobs))
        chunks.append(_chunk(whole, index, {}, choice.get("finish_reason") or "stop"))
    if not chunks:
        raise Unmergeable("the answer has no choices")
    return chunks


def _openai_completion(whole: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    head = _head(whole, _OPENAI_HEAD[:3])
    tail = {name: whole[name] for name in ("model", "system_fingerprint") if name in whole}
    zero = {"usage": ZERO_USAGE} if include_usage else {}
    chunks: list[dict[str, Any]] = []
    for choice in whole.get("choices") or []:
        index = choice.get("index", 0)
        text: dict[str, Any] = {"text": choice.get("text") or "", "index": index, "finish_reason": None}
        if choice.get("logprobs"):
            text["logprobs"] = choice["logprobs"]
        end = {"text": "", "index": index, "finish_reason": choice.get("finish_reason") or "stop"}
        chunks += [{**head, "object": "text_completion", "choices": [c], **tail, **zero} for c in (text, end)]
    if not chunks:
        raise Unmergeable("the answer has no choices")
    return chunks
