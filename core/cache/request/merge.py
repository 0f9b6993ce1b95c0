"""A streamed answer merged into the answer the same request gets without streaming (pure: no I/O, no clock).

What Ollama itself does when a client sends ``"stream": false``, rebuilt from the recorded stream:

- native ``/api/chat`` and ``/api/generate`` (NDJSON): the last ``done: true`` line, with the text of
  every line joined in order (``message.content``/``response``, ``thinking``), the tool calls and
  logprobs of every line in order; so the final statistics, ``done_reason``, ``context`` and
  ``created_at`` are those of the last line, as in Ollama's own whole answer. Written compact, no
  trailing newline (gin's ``c.JSON``).
- OpenAI ``/v1/chat/completions`` and ``/v1/completions`` (SSE): one choice per index, the deltas'
  ``content``/``reasoning``/``text`` joined, tool calls merged by their index (argument fragments
  joined), the last ``finish_reason`` of each choice and the stream's last ``usage``; ``id``,
  ``created``, ``model`` and ``system_fingerprint`` from the chunks; ``object`` ``chat.completion`` or
  ``text_completion``. Written with a trailing newline (Go's ``json.Encoder``, as Ollama's ``/v1``).
- Anthropic ``/v1/messages`` and the Responses API's ``/v1/responses``: see
  :mod:`core.cache.request.anthropic_messages` and :mod:`core.cache.request.openai_responses`.

An OpenAI stream carries ``usage`` only when its request asked ``stream_options.include_usage``;
without it no whole answer can be given faithfully (``usage`` is always part of one), so
:func:`can_merge` says no and the caller asks the upstream instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.cache.request import anthropic_messages, openai_responses
from core.cache.request.keys import ROUTES
from core.cache.request.wire import Unmergeable, dumps, ndjson_lines, sse_data


def can_merge(route_path: str, chunks: Sequence[bytes]) -> bool:
    """Whether a recorded stream on ``route_path`` can give the whole answer faithfully.

    A native stream always can; an OpenAI stream only when it carries a ``usage`` (a stream without
    the word is told at the cost of a byte search, without parsing it).
    """
    route = ROUTES.get(route_path)
    if route is None or route.kind not in ("chat", "generate"):
        return False
    if route.api != "openai":  # their streams carry everything a whole answer has
        return True
    body = b"".join(chunks)
    if b'"usage"' not in body:
        return False
    try:
        return any(_usage(chunk) for chunk in reversed(sse_data([body])))
    except ValueError:
        return False


def merge(route_path: str, chunks: Sequence[bytes]) -> bytes:
    """The whole answer body of the stream recorded as ``chunks`` on ``route_path``.

    Raises :class:`Unmergeable` for a stream that is not a complete answer in the route's format.
    """
    route = ROUTES.get(route_path)
    if route is None or route.kind not in ("chat", "generate"):
        raise Unmergeable(f"{route_path} has no stream mode")
    try:
        if route.api == "ollama":
            return dumps(_merge_native(route.kind, ndjson_lines(chunks)))
        if route.api == "anthropic":
            return anthropic_messages.merge(chunks)
        if route.api == "responses":
            return openai_responses.merge(chunks)
        return dumps(_merge_openai(route.kind, sse_data(chunks))) + b"\n"
    except (ValueError, TypeError, AttributeError) as error:
        raise Unmergeable(f"unreadable stream: {error}") from None


def _merge_native(kind: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    if not lines or lines[-1].get("done") is not True:
        raise Unmergeable("the stream has no final done line")
    content: list[str] = []
    thinking: list[str] = []
    tool_calls: list[Any] = []
    logprobs: list[Any] = []
    for line in lines:
        part = (line.get("message") or {}) if kind == "chat" else line
        content.append(part.get("content" if kind == "chat" else "response") or "")
        thinking.append(part.get("thinking") or "")
        tool_calls.extend(part.get("tool_calls") or [])
        logprobs.extend(line.get("logprobs") or [])
    whole = dict(lines[-1])
    text = {"content" if kind == "chat" else "response": "".join(content)}
    if kind == "chat":
        message = {"role": (lines[-1].get("message") or {}).get("role") or "assistant", **text}
        extra = {"thinking": "".join(thinking), "tool_calls": tool_calls}
        rest = {k: v for k, v in (lines[-1].get("message") or {}).items() if k not in message and k not in extra}
        whole["message"] = {**message, **{k: v for k, v in extra.items() if v}, **rest}
    else:
        whole.update(text)
        if "".join(thinking):
            whole = _insert_after(whole, "response", "thinking", "".join(thinking))
        if tool_calls:
            whole["tool_calls"] = tool_calls
    if logprobs:
        whole["logprobs"] = logprobs
    return whole


def _insert_after(mapping: dict[str, Any], after: str, key: str, value: Any) -> dict[str, Any]:
    """``mapping`` with ``key`` set, placed after ``after`` (Go writes struct fields in their order)."""
    out: dict[str, Any] = {}
    for name, member in mapping.items():
        if name != key:
            out[name] = member
        if name == after:
            out[key] = value
    out.setdefault(key, value)
    return out


def _usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    usage = chunk.get("usage")
    return usage if isinstance(usage, dict) and usage.get("total_tokens") else None


def _merge_openai(kind: str, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    if not chunks:
        raise Unmergeable("the stream has no chunks")
    first = chunks[0]
    usage: dict[str, Any] | None = None
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        usage = _usage(chunk) or usage
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            merged = choices.setdefault(
                index,
                {
                    "index": index,
                    "role": "",
                    "text": [],
                    "reasoning": [],
                    "tools": {},
                    "finish_reason": None,
                    "logprobs": [],
                },
            )
            delta = (choice.get("delta") or {}) if kind == "chat" else choice
            merged["role"] = merged["role"] or delta.get("role") or ""
            merged["text"].append(delta.get("content" if kind == "chat" else "text") or "")
            merged["reasoning"].append(delta.get("reasoning") or "")
            for call in delta.get("tool_calls") or []:
                _merge_tool_call(merged["tools"], call)
            merged["finish_reason"] = choice.get("finish_reason") or merged["finish_reason"]
            merged["logprobs"].extend((choice.get("logprobs") or {}).get("content") or [])
    if usage is None:
        raise Unmergeable("the stream carries no usage (its request did not ask include_usage)")
    whole: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": "chat.completion" if kind == "chat" else "text_completion",
        "created": first.get("created", 0),
        "model": first.get("model", ""),
        "system_fingerprint": first.get("system_fingerprint", ""),
    }
    whole["choices"] = [_choice(kind, choices[index]) for index in sorted(choices)]
    whole["usage"] = usage
    return whole


def _merge_tool_call(calls: dict[int, dict[str, Any]], call: dict[str, Any]) -> None:
    """Add one streamed tool-call delta to ``calls`` (by index): the first id, type and name, arguments joined."""
    index = call.get("index", len(calls))
    function = call.get("function") or {}
    merged = calls.setdefault(index, {"id": "", "index": index, "type": "", "function": {"name": "", "arguments": ""}})
    merged["id"] = merged["id"] or call.get("id") or ""
    merged["type"] = merged["type"] or call.get("type") or ""
    merged["function"]["name"] = merged["function"]["name"] or function.get("name") or ""
    merged["function"]["arguments"] += function.get("arguments") or ""


def _choice(kind: str, merged: dict[str, Any]) -> dict[str, Any]:
    if kind == "chat":
        message: dict[str, Any] = {"role": merged["role"] or "assistant", "content": "".join(merged["text"])}
        if "".join(merged["reasoning"]):
            message["reasoning"] = "".join(merged["reasoning"])
        if merged["tools"]:
            message["tool_calls"] = [merged["tools"][index] for index in sorted(merged["tools"])]
        choice: dict[str, Any] = {
            "index": merged["index"],
            "message": message,
            "finish_reason": merged["finish_reason"],
        }
    else:
        choice = {"text": "".join(merged["text"]), "index": merged["index"], "finish_reason": merged["finish_reason"]}
    if merged["logprobs"]:
        choice["logprobs"] = {"content": merged["logprobs"]}
    return choice
