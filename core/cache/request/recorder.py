"""Recording an upstream answer while it is forwarded, and judging whether it may be stored (pure).

Only a complete success is ever stored: status 200, a body that parses, no error object, and for a
stream its proper end (Ollama's final ``"done": true`` line, OpenAI's ``data: [DONE]``, Anthropic's
``message_stop``, the Responses API's ``response.completed``). Anything else,
an error line in the middle, a stream cut short, is passed to the client and forgotten.
"""

from __future__ import annotations

import json
from typing import Any

from core.cache.entry import Entry
from core.cache.request import anthropic_messages, openai_responses
from core.cache.request.keys import Route
from core.cache.request.verdict import Verdict, count

# Ollama answers an empty prompt or message list by loading (or, with keep_alive 0, unloading) the
# model: a single {"done": true, "done_reason": "load"}, even when a stream was asked for.
NOT_ANSWERS = frozenset({"load", "unload"})


class Recorder:
    """Collects the chunks of one upstream answer with their arrival time.

    ``started`` and every ``now`` are seconds on one monotonic clock; offsets are kept relative to
    ``started`` so a replay can reproduce the pace. ``request`` is the body the client sent (a reference
    to the bytes the proxy already holds), kept in the entry.
    """

    def __init__(self, route: Route, streamed: bool, started: float, generation: int = 0, request: bytes = b"") -> None:
        self.route = route
        self.request = request
        self.streamed = streamed
        self.started = started
        self.chunks: list[bytes] = []
        self.offsets_s: list[float] = []
        self.status = 0
        self.content_type = ""
        self.generation = generation  # the proxy's clear generation when the request began

    def begin(self, status: int, content_type: str) -> None:
        """The upstream's answer begins: its status and content type."""
        self.status = status
        self.content_type = content_type

    def cut(self) -> None:
        """The answer was cut off (the upstream broke off, or serving stops): it is never stored."""
        self.status = 0

    def feed(self, chunk: bytes, now: float) -> None:
        if chunk:
            self.chunks.append(chunk)
            self.offsets_s.append(now - self.started)

    def verdict(self) -> Verdict:
        """Judge the answer once the upstream has finished sending it."""
        if self.status != 200:
            return Verdict(False, f"upstream answered {self.status}")
        body = b"".join(self.chunks)
        try:
            if self.route.api == "ollama":
                return _judge_ollama(self.route, body, self.streamed)
            if self.route.api == "anthropic":
                return anthropic_messages.judge(body, self.streamed)
            if self.route.api == "responses":
                return openai_responses.judge(body, self.streamed)
            return _judge_openai(self.route, body, self.streamed)
        except ValueError as error:
            return Verdict(False, f"unreadable answer: {error}")

    def entry(
        self, key: str, model: str, verdict: Verdict, created: float, finished: float, expires: float = 0.0
    ) -> Entry:
        """The entry to store for a storable verdict; ``created`` and ``expires`` are wall-clock seconds."""
        return Entry(
            key=key,
            route=self.route.path,
            model=model,
            streamed=self.streamed,
            content_type=self.content_type,
            chunks=self.chunks,
            offsets_s=self.offsets_s,
            created=created,
            duration_s=finished - self.started,
            prompt_tokens=verdict.prompt_tokens,
            completion_tokens=verdict.completion_tokens,
            expires=expires,
            request=self.request,
        )


def _object(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _judge_ollama(route: Route, body: bytes, streamed: bool) -> Verdict:
    if streamed:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if not lines:
            return Verdict(False, "empty stream")
        if any(line.lstrip().startswith(b'{"error"') for line in lines):
            return Verdict(False, "the stream carries an error")
        last = _object(lines[-1])
        if last.get("done") is not True:
            return Verdict(False, "the stream ended before its final chunk")
    else:
        last = _object(body)
        if "error" in last:
            return Verdict(False, "the answer is an error")
        required = {"chat": "done", "generate": "done", "embed": "embeddings", "embeddings": "embedding"}
        field = required[route.kind]
        if last.get(field) in (None, False):
            return Verdict(False, f"the answer has no {field!r}")
    if last.get("done_reason") in NOT_ANSWERS:
        return Verdict(False, f"a model {last['done_reason']}, not an answer")
    return Verdict(
        True, prompt_tokens=count(last.get("prompt_eval_count")), completion_tokens=count(last.get("eval_count"))
    )


def _judge_openai(route: Route, body: bytes, streamed: bool) -> Verdict:
    usage: Any = None
    if streamed:
        events = [e.strip() for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
        if not events or events[-1] != b"data: [DONE]":
            return Verdict(False, "the stream ended before data: [DONE]")
        for event in events[:-1]:
            if not event.startswith(b"data:"):
                continue
            chunk = _object(event[5:])
            if "error" in chunk:
                return Verdict(False, "the stream carries an error")
            usage = chunk.get("usage") or usage
    else:
        answer = _object(body)
        if "error" in answer:
            return Verdict(False, "the answer is an error")
        field = "data" if route.kind == "embed" else "choices"
        if not answer.get(field):
            return Verdict(False, f"the answer has no {field!r}")
        usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Verdict(
        True, prompt_tokens=count(usage.get("prompt_tokens")), completion_tokens=count(usage.get("completion_tokens"))
    )
