"""OpenAI's Responses API (``/v1/responses``) as Ollama serves it, stateless: judging, merging and synthesising
its streams (pure).

A stream is Server-Sent Events named by their ``type`` and numbered by ``sequence_number`` from 0:
``response.created`` and ``response.in_progress`` (the response without output), per output item
``response.output_item.added`` … ``response.output_item.done`` with the item's own events between (a message's
``content_part`` and ``output_text`` events, a function call's ``function_call_arguments`` events, a reasoning
item's ``reasoning_summary_text`` events), then ``response.completed`` carrying the whole response. Only a
stream that reached ``response.completed`` is an answer: ``error``, ``response.failed`` and
``response.incomplete`` are failures, and Ollama ends a stream whose model failed without any of them.

Merged, a stream is the response ``response.completed`` carries, as the non-streamed request gets it: Ollama's
stream leaves out a message item when no text came, where its whole answer has one with empty text, and echoes
``reasoning`` with null members, where its whole answer leaves them out. Synthesised, a whole response becomes
every event above, each item's content in one delta.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.cache.request.verdict import Verdict, count
from core.cache.request.wire import Unmergeable, dumps, sse_data

_FAILURES = ("error", "response.failed", "response.incomplete")
COMPLETED = "response.completed"


def judge(body: bytes, streamed: bool) -> Verdict:
    """Whether the recorded ``body`` is a completed response (a stream that reached ``response.completed``)."""
    if streamed:
        events = sse_data([body])
        if any(event.get("type") in _FAILURES for event in events):
            return Verdict(False, "the stream carries a failure")
        if not events or events[-1].get("type") != COMPLETED:
            return Verdict(False, "the stream ended before response.completed")
        answer = events[-1].get("response") or {}
    else:
        answer = json.loads(body)
        if not isinstance(answer, dict) or answer.get("object") != "response" or answer.get("error"):
            return Verdict(False, "the answer is not a response")
    if answer.get("status") != "completed":
        return Verdict(False, f"the response is {answer.get('status')!r}, not completed")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return Verdict(
        True, prompt_tokens=count(usage.get("input_tokens")), completion_tokens=count(usage.get("output_tokens"))
    )


def merge(chunks: Sequence[bytes]) -> bytes:
    """The whole response of a recorded stream. Raises :class:`Unmergeable` for one that did not complete."""
    events = sse_data(chunks)
    if not events or events[-1].get("type") != COMPLETED or not isinstance(events[-1].get("response"), dict):
        raise Unmergeable("the stream did not complete")
    response = dict(events[-1]["response"])
    output = list(response.get("output") or [])
    if not any(item.get("type") in ("message", "function_call") for item in output):
        output.append(_message(f"msg_{response.get('id', '')}", "completed", ""))
    response["output"] = output
    if isinstance(response.get("reasoning"), dict):
        response["reasoning"] = {name: value for name, value in response["reasoning"].items() if value is not None}
    return dumps(response) + b"\n"


def _message(ident: str, status: str, text: str | None) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text is not None else []
    return {"id": ident, "type": "message", "status": status, "role": "assistant", "content": content}


class _Events:
    """Events numbered as they are written, their keys sorted as Ollama (Go maps) writes them."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **data: Any) -> None:
        event = {**data, "type": kind, "sequence_number": len(self.frames)}
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        self.frames.append(b"event: " + kind.encode() + b"\ndata: " + text.encode() + b"\n\n")


def synthesise(body: bytes) -> list[bytes]:
    """The stream of the whole response ``body``: one element per event."""
    whole = json.loads(body)
    if not isinstance(whole, dict) or whole.get("object") != "response":
        raise Unmergeable("the answer is not a response")
    events = _Events()
    opening = {**whole, "status": "in_progress", "output": [], "usage": None, "completed_at": None}
    events.add("response.created", response=opening)
    events.add("response.in_progress", response=opening)
    for at, item in enumerate(whole.get("output") or []):
        _item_events(events, at, item)
    events.add(COMPLETED, response=whole)
    return events.frames


def _item_events(events: _Events, at: int, item: dict[str, Any]) -> None:
    kind, ident = item.get("type"), item.get("id", "")
    if kind == "message":
        events.add("response.output_item.added", output_index=at, item={**item, "status": "in_progress", "content": []})
        for index, part in enumerate(item.get("content") or []):
            where = {"item_id": ident, "output_index": at, "content_index": index}
            text = part.get("text") or ""
            events.add("response.content_part.added", **where, part={**part, "text": ""})
            if part.get("type") == "output_text":
                events.add("response.output_text.delta", **where, delta=text, logprobs=[])
                events.add("response.output_text.done", **where, text=text, logprobs=[])
            events.add("response.content_part.done", **where, part=part)
    elif kind == "function_call":
        arguments = item.get("arguments") or ""
        events.add(
            "response.output_item.added", output_index=at, item={**item, "status": "in_progress", "arguments": ""}
        )
        events.add("response.function_call_arguments.delta", item_id=ident, output_index=at, delta=arguments)
        events.add("response.function_call_arguments.done", item_id=ident, output_index=at, arguments=arguments)
    elif kind == "reasoning":
        events.add("response.output_item.added", output_index=at, item={**item, "summary": []})
        for index, part in enumerate(item.get("summary") or []):
            where = {"item_id": ident, "output_index": at, "summary_index": index}
            events.add("response.reasoning_summary_text.delta", **where, delta=part.get("text") or "")
            events.add("response.reasoning_summary_text.done", **where, text=part.get("text") or "")
    else:
        events.add("response.output_item.added", output_index=at, item=item)
    events.add("response.output_item.done", output_index=at, item=item)
