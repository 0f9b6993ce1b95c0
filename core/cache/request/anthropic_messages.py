"""Anthropic's Messages API (``/v1/messages``) as Ollama serves it: judging, merging and synthesising its
streams (pure).

A stream is Server-Sent Events, each named by its ``type``: ``message_start`` (the message without content),
per content block ``content_block_start``, ``content_block_delta`` (``text_delta``, ``thinking_delta``,
``signature_delta``, ``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (the stop reason
and the usage) and ``message_stop``. Only a stream that reached ``message_stop`` is an answer: Ollama ends a
stream whose model failed with neither ``message_delta`` nor ``message_stop``, and an ``error`` event is a
failure whatever follows.

Merged, the blocks become the whole message exactly as the non-streamed request gets it: blocks in order
(text, thinking with its signature, tool use with its input parsed from the JSON fragments), the stop reason
and the usage of ``message_delta`` over ``message_start``'s estimate, and ``content`` null when no block came,
as Ollama writes an empty message. Synthesised, a whole message becomes the events above, one delta per block.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.cache.request.verdict import Verdict, count
from core.cache.request.wire import Unmergeable, dumps, sse_data, sse_event

_DELTAS = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}
_HEAD_LEFT_OUT = ("content", "stop_reason", "stop_sequence", "usage")


def judge(body: bytes, streamed: bool) -> Verdict:
    """Whether the recorded ``body`` is a complete message (a stream that reached ``message_stop``)."""
    if streamed:
        events = sse_data([body])
        if any(event.get("type") == "error" for event in events):
            return Verdict(False, "the stream carries an error")
        if not events or events[-1].get("type") != "message_stop":
            return Verdict(False, "the stream ended before message_stop")
        usage = _usage(events)
    else:
        answer = json.loads(body)
        if not isinstance(answer, dict) or answer.get("type") != "message":
            return Verdict(False, "the answer is not a message")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return Verdict(
        True, prompt_tokens=count(usage.get("input_tokens")), completion_tokens=count(usage.get("output_tokens"))
    )


def _usage(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``message_start``'s usage (an estimate of the input) overridden by ``message_delta``'s counts."""
    usage: dict[str, Any] = {}
    for event in events:
        if event.get("type") == "message_start":
            usage.update((event.get("message") or {}).get("usage") or {})
        elif event.get("type") == "message_delta":
            usage.update(event.get("usage") or {})
    return usage


def merge(chunks: Sequence[bytes]) -> bytes:
    """The whole message of a recorded stream. Raises :class:`Unmergeable` for one that is not complete."""
    events = sse_data(chunks)
    starts = [event for event in events if event.get("type") == "message_start"]
    if not starts or events[-1].get("type") != "message_stop":
        raise Unmergeable("the stream is not a whole message")
    head = starts[0].get("message") or {}
    message = {name: value for name, value in head.items() if name not in _HEAD_LEFT_OUT}
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, list[str]] = {}
    ending: dict[str, Any] = {}
    for event in events:
        kind, index = event.get("type"), event.get("index", 0)
        if kind == "content_block_start":
            blocks[index] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "input_json_delta":
                inputs.setdefault(index, []).append(delta.get("partial_json") or "")
            elif delta.get("type") in _DELTAS:
                name = _DELTAS[delta["type"]]
                blocks[index][name] = (blocks[index].get(name) or "") + (delta.get(name) or "")
        elif kind == "message_delta":
            ending.update(event.get("delta") or {})
    for index, parts in inputs.items():
        text = "".join(parts)
        blocks[index]["input"] = json.loads(text) if text else {}
    message["content"] = [blocks[index] for index in sorted(blocks)] or None
    message.update(ending)
    message["usage"] = _usage(events)
    return dumps(message) + b"\n"


def synthesise(body: bytes) -> list[bytes]:
    """The stream of the whole message ``body``: one element per event."""
    whole = json.loads(body)
    if not isinstance(whole, dict) or whole.get("type") != "message":
        raise Unmergeable("the answer is not a message")
    usage = whole.get("usage") or {}
    head = {name: value for name, value in whole.items() if name not in _HEAD_LEFT_OUT}
    start_usage = {"input_tokens": usage.get("input_tokens", 0), "output_tokens": 0}
    events = [
        sse_event("message_start", {"type": "message_start", "message": {**head, "content": [], "usage": start_usage}})
    ]
    for index, block in enumerate(whole.get("content") or []):
        events += _block_events(index, block)
    ending = {name: whole[name] for name in ("stop_reason", "stop_sequence") if name in whole}
    events.append(sse_event("message_delta", {"type": "message_delta", "delta": ending, "usage": usage}))
    events.append(sse_event("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    """A block opened empty, its content in one delta, closed."""
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        opened = {**block, "text": ""}
        deltas.append({"type": "text_delta", "text": block.get("text") or ""})
    elif kind == "thinking":
        opened = {**block, "thinking": ""}
        opened.pop("signature", None)
        deltas.append({"type": "thinking_delta", "thinking": block.get("thinking") or ""})
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        opened = {**block, "input": {}}
        deltas.append({"type": "input_json_delta", "partial_json": dumps(block.get("input") or {}).decode()})
    else:
        opened = block
    start = {"type": "content_block_start", "index": index, "content_block": opened}
    frames = [sse_event("content_block_start", start)]
    frames += [
        sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
    ]
    frames.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return frames
