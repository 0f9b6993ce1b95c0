"""Ollama's OpenAI Responses API, ``POST /v1/responses``, as its ``openai/responses.go`` and middleware do it.

Stateless: Ollama turns the request (``instructions``, ``input`` as a string or items, ``reasoning.effort``
as ``think``, function tools, ``text.format`` json_schema as ``format``) into a native chat request, runs
it as ``/api/chat`` (answered here by :mod:`fake_turns`) and converts every native chunk into SSE events
(its ``ResponsesStreamConverter``), or the whole native answer into one response object.

Where Ollama differs from OpenAI's own API (a cache that merges these streams or synthesises them must
expect it):

- stream events are Go maps, so their keys come sorted; ``sequence_number`` counts from 0;
- reasoning streams as ``response.reasoning_summary_text.delta``/``.done`` with no
  ``reasoning_summary_part`` events, and the reasoning item has the thinking text as ``encrypted_content``;
- the item ids are random per stream (``rs_N``, ``fc_N_i``) but derived from the response id without
  streaming (``rs_resp_N``, ``fc_resp_N_i``); a function call's arguments come in one delta;
- with a tool call the output has no message item; without one a non-streamed answer always has one
  (empty text included), a streamed one only once some text came;
- ``status`` is ``completed`` even when the answer was cut by ``max_output_tokens``
  (``incomplete_details`` stays null), and ``reasoning_tokens`` and ``cached_tokens`` are always 0;
- a runner failing mid-answer sends neither ``response.failed`` nor ``error``: its ``{"error"}`` line
  reads as an empty chunk and the stream ends without ``response.completed`` (before the first chunk, or
  without streaming, the answer is an OpenAI-shaped JSON error instead).

Built-in ``web_search`` tools, which Ollama runs through ollama.com, are not imitated: they are dropped.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .fake_compat import answer_converted
from .fake_native import Handler
from .fake_openai import REASONING_EFFORT, MiddlewareError, middleware_body
from .fake_turns import Host, prepare_chat
from .fake_wire import GoRaw, go_float, go_json, go_map, json_type, sse_named

_FIELDS = {
    "model": ("string", "string"),
    "instructions": ("string", "string"),
    "stream": ("bool", "bool"),
    "background": ("bool", "bool"),
    "temperature": ("int", "float64"),
    "top_p": ("int", "float64"),
    "max_output_tokens": ("int", "int"),
    "tools": ("slice", "[]openai.ResponsesTool"),
}
_CONTENT_TYPES = ("input_text", "input_image", "output_text", "input_file")


def _text(contents: Any, where: str) -> str:
    """The text of a message's content (a string, or content items, checked as ``unmarshalResponsesContent``)."""
    if contents is None or isinstance(contents, str):
        return contents or ""
    if not isinstance(contents, list):
        raise MiddlewareError(400, f"{where}content must be a string or array: cannot unmarshal {json_type(contents)}")
    for j, part in enumerate(contents):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in _CONTENT_TYPES:
            raise MiddlewareError(400, f"{where}content[{j}]: unknown content type: {kind or ''}")
        if kind == "input_file":
            raise MiddlewareError(400, "file inputs are not currently supported")
    return "".join(str(p.get("text", "")) for p in contents if p["type"] in ("input_text", "output_text"))


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The native messages of a request (``FromResponsesRequest``). Ollama also folds an assistant message
    replayed between a function call and its output into the call's message; the fake keeps them apart."""
    out: list[dict[str, Any]] = (
        [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    )
    given = body.get("input")
    if isinstance(given, str) or given is None:
        return out + ([{"role": "user", "content": given}] if given else [])
    if not isinstance(given, list):
        raise MiddlewareError(400, f"input must be a string or array: cannot unmarshal {json_type(given)}")
    thinking = ""  # a reasoning item's text, for the next assistant message
    for i, item in enumerate(given):
        item = item if isinstance(item, Mapping) else {}
        kind = item.get("type") or ("message" if item.get("role") else "")
        if kind == "reasoning":
            thinking = item.get("encrypted_content") or ""
        elif kind == "message":
            msg = {"role": item.get("role", ""), "content": _text(item.get("content"), f"input[{i}]: ")}
            if msg["role"] == "assistant" and thinking:
                msg["thinking"], thinking = thinking, ""
            out.append(msg)
        elif kind == "function_call":
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError as err:
                raise MiddlewareError(400, f"failed to parse function call arguments: {err}") from None
            call = {"id": item.get("call_id", ""), "function": {"name": item.get("name", ""), "arguments": arguments}}
            if not out or out[-1]["role"] != "assistant":
                out.append({"role": "assistant", "content": ""})
            out[-1]["tool_calls"] = [*out[-1].get("tool_calls", []), call]
            if thinking:
                out[-1]["thinking"], thinking = thinking, ""
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, f"input[{i}]: ")
            out.append({"role": "tool", "content": text, "tool_call_id": item.get("call_id", "")})
        elif kind != "web_search_call":
            reason = (
                f"unknown input item type: {json.dumps(kind)}" if kind else "input item missing required 'type' field"
            )
            raise MiddlewareError(400, f"input[{i}]: {reason}")
    return out + ([{"role": "assistant", "content": "", "thinking": thinking}] if thinking else [])


def _tools(raw: list[Any]) -> list[dict[str, Any]]:
    """Function tools (a namespace's members under ``namespace.name``); web search left out."""
    tools: list[dict[str, Any]] = []
    for tool in raw:
        if tool.get("type") == "namespace":
            prefix = f"{tool.get('name')}." if tool.get("name") else ""
            for member in _tools(tool.get("tools") or []):
                name = member["function"]["name"]
                member["function"]["name"] = name if name.startswith(prefix) else prefix + name
                tools.append(member)
        elif tool.get("type") != "web_search":
            function = {"name": tool.get("name", ""), "description": tool.get("description") or ""}
            tools.append({"type": tool.get("type", ""), "function": {**function, "parameters": tool.get("parameters")}})
    return tools


def to_native(body: Mapping[str, Any]) -> dict[str, Any]:
    """The native chat request of a Responses request."""
    effort = (body.get("reasoning") or {}).get("effort") or ""
    if effort not in REASONING_EFFORT:
        raise MiddlewareError(
            400,
            f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", '
            '"high", "xhigh", "ultra", "max", or "none")',
        )
    options: dict[str, Any] = {"temperature": 1.0 if body.get("temperature") is None else body["temperature"]}
    options.update({"top_p": body["top_p"]} if body.get("top_p") is not None else {})
    options.update({"num_predict": body["max_output_tokens"]} if body.get("max_output_tokens") is not None else {})
    fmt = ((body.get("text") or {}).get("format")) or {}
    return {
        "model": body.get("model", ""),
        "messages": _messages(body),
        "options": options,
        "tools": _tools(body.get("tools") or []),
        "format": fmt.get("schema") if fmt.get("type") == "json_schema" else None,
        "think": REASONING_EFFORT[effort],
        "stream": body.get("stream") is True,
    }


def response_object(body: Mapping[str, Any], ident: str, status: str, *, streamed: bool) -> dict[str, Any]:
    """The response object's fields beside ``output`` and ``usage``, echoing the request."""
    reasoning = body.get("reasoning") or {}
    echoed = {key: reasoning[key] for key in ("effort", "summary") if reasoning.get(key)}
    if streamed and echoed:
        echoed = {"effort": echoed.get("effort"), "summary": echoed.get("summary")}  # a map with nulls
    tools = [
        {key: go_map(tool.get(key)) for key in ("type", "name", "description", "strict", "parameters")}
        | ({"tools": go_map(tool["tools"])} if tool.get("tools") and not streamed else {})
        for tool in body.get("tools") or []
    ]
    fmt = dict((body.get("text") or {}).get("format") or {"type": "text"})
    if isinstance(fmt.get("schema"), Mapping):
        fmt["schema"] = GoRaw(fmt["schema"])  # a json.RawMessage: echoed as sent
    return {
        "id": ident,
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": None,
        "status": status,
        "incomplete_details": None,
        "model": body.get("model", ""),
        "previous_response_id": None,
        "instructions": body.get("instructions") or None,
        "output": [],
        "error": None,
        "tools": tools,
        "tool_choice": "auto",
        "truncation": body.get("truncation") or "disabled",
        "parallel_tool_calls": True,
        "text": {"format": {k: fmt[k] for k in ("type", "name", "schema", "strict") if fmt.get(k) not in (None, "")}},
        "top_p": go_float(1.0 if body.get("top_p") is None else body["top_p"]),
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_logprobs": 0,
        "temperature": go_float(1.0 if body.get("temperature") is None else body["temperature"]),
        "reasoning": echoed or None,
        "usage": None,
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "store": False,
        "background": bool(body.get("background")),
        "service_tier": "default",
        "metadata": {},
        "safety_identifier": None,
        "prompt_cache_key": None,
    }


def _usage(chunk: Mapping[str, Any]) -> dict[str, Any]:
    prompt, generated = chunk.get("prompt_eval_count", 0), chunk.get("eval_count", 0)
    return {
        "input_tokens": prompt,
        "output_tokens": generated,
        "total_tokens": prompt + generated,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }


def _call_item(ident: str, call: Mapping[str, Any], status: str, arguments: str) -> dict[str, Any]:
    head = {"id": ident, "type": "function_call", "status": status}
    return {**head, "call_id": call.get("id", ""), "name": call["function"]["name"], "arguments": arguments}


def _message_item(ident: str, status: str, text: str | None) -> dict[str, Any]:
    part = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text is not None else []
    return {"id": ident, "type": "message", "status": status, "role": "assistant", "content": part}


def to_response(body: Mapping[str, Any], ident: str, item_id: str, whole: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streamed answer (``ToResponse``) from the native ``stream: false`` object."""
    message = whole.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("thinking"):
        summary = [{"type": "summary_text", "text": message["thinking"]}]
        output.append(
            {"id": f"rs_{ident}", "type": "reasoning", "summary": summary, "encrypted_content": summary[0]["text"]}
        )
    for i, call in enumerate(message.get("tool_calls") or []):
        output.append(_call_item(f"fc_{ident}_{i}", call, "completed", go_json(call["function"]["arguments"]).decode()))
    if not message.get("tool_calls"):
        output.append(_message_item(item_id, "completed", message.get("content", "")))
    response = response_object(body, ident, "completed", streamed=False)
    return {**response, "completed_at": int(time.time()), "output": output, "usage": _usage(whole)}


class StreamConverter:
    """Native chunks to Responses SSE events, as Ollama's ``ResponsesStreamConverter`` does."""

    def __init__(self, body: Mapping[str, Any], ident: str, item_id: str) -> None:
        self.body, self.ident, self.item_id = body, ident, item_id
        self.sequence = 0
        self.output_index = 0
        self.started = self.text_started = self.calls_sent = False
        self.text = self.thinking = ""
        self.reasoning_id: str | None = None
        self.done_items: list[dict[str, Any]] = []

    def _event(self, kind: str, **data: Any) -> bytes:
        frame = sse_named(kind, go_map({**data, "type": kind, "sequence_number": self.sequence}))
        self.sequence += 1
        return frame

    def _response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {**response_object(self.body, self.ident, status, streamed=True), "output": output}

    def _finish_reasoning(self) -> list[bytes]:
        if self.reasoning_id is None:
            return []
        summary = [{"type": "summary_text", "text": self.thinking}]
        item = {"id": self.reasoning_id, "type": "reasoning", "summary": summary, "encrypted_content": self.thinking}
        self.done_items.append(item)
        at, text, self.reasoning_id, self.thinking = self.output_index, self.thinking, None, ""
        self.output_index += 1
        done = {"item_id": item["id"], "output_index": at, "summary_index": 0, "text": text}
        return [
            self._event("response.reasoning_summary_text.done", **done),
            self._event("response.output_item.done", output_index=at, item=item),
        ]

    def _text_events(self, kind: str, **data: Any) -> bytes:
        return self._event(kind, item_id=self.item_id, output_index=self.output_index, content_index=0, **data)

    def process(self, chunk: Mapping[str, Any]) -> list[bytes]:
        """The events of one native chunk (an ``{"error"}`` line reads as an empty chunk: none)."""
        out: list[bytes] = []
        message = chunk.get("message") or {}
        if not self.started:
            self.started = True
            for kind in ("response.created", "response.in_progress"):
                out.append(self._event(kind, response=self._response("in_progress", [])))
        if message.get("thinking"):
            if self.reasoning_id is None:
                self.reasoning_id = f"rs_{random.randrange(999999)}"
                item = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
                out.append(self._event("response.output_item.added", output_index=self.output_index, item=item))
            self.thinking += message["thinking"]
            delta = {"item_id": self.reasoning_id, "output_index": self.output_index, "summary_index": 0}
            out.append(self._event("response.reasoning_summary_text.delta", **delta, delta=message["thinking"]))
        if message.get("tool_calls"):
            out += self._finish_reasoning()
            for i, call in enumerate(message["tool_calls"]):
                at, arguments = self.output_index + i, go_json(call["function"]["arguments"]).decode()
                fc_id = f"fc_{random.randrange(999999)}_{i}"
                item, on = _call_item(fc_id, call, "completed", arguments), {"item_id": fc_id, "output_index": at}
                self.done_items.append(item)
                out += [
                    self._event(
                        "response.output_item.added",
                        output_index=at,
                        item={**item, "status": "in_progress", "arguments": ""},
                    ),
                    self._event("response.function_call_arguments.delta", **on, delta=arguments),
                    self._event("response.function_call_arguments.done", **on, arguments=arguments),
                    self._event("response.output_item.done", output_index=at, item=item),
                ]
            self.output_index += len(message["tool_calls"])
            self.calls_sent = True
        elif not self.calls_sent and message.get("content"):
            out += self._finish_reasoning()
            if not self.text_started:
                self.text_started = True
                item = _message_item(self.item_id, "in_progress", None)
                out.append(self._event("response.output_item.added", output_index=self.output_index, item=item))
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                out.append(self._text_events("response.content_part.added", part=part))
            self.text += message["content"]
            out.append(self._text_events("response.output_text.delta", delta=message["content"], logprobs=[]))
        if chunk.get("done"):
            out += self._finish_reasoning()
            output = list(self.done_items)
            if self.text_started:
                output.append(_message_item(self.item_id, "completed", self.text))
            if self.text_started and not self.calls_sent:
                out.append(self._text_events("response.output_text.done", text=self.text, logprobs=[]))
                part = output[-1]["content"][0]
                out.append(self._text_events("response.content_part.done", part=part))
                out.append(self._event("response.output_item.done", output_index=self.output_index, item=output[-1]))
            response = {**self._response("completed", output), "usage": _usage(chunk), "completed_at": int(time.time())}
            out.append(self._event("response.completed", response=response))
        return out


async def responses(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /v1/responses``: one response object, or its SSE events with ``"stream": true``."""
    body = await middleware_body(request, "openai.ResponsesRequest", _FIELDS)
    for tool in body.get("tools") or []:
        if not isinstance(tool, Mapping):
            raise MiddlewareError(
                400,
                f"json: cannot unmarshal {json_type(tool)} into Go struct field "
                "ResponsesRequest.tools of type openai.ResponsesTool",
            )
    ident, item_id = f"resp_{random.randrange(999999)}", f"msg_{random.randrange(999999)}"
    turn = prepare_chat(host, cfg, to_native(body))
    return await answer_converted(
        host,
        cfg,
        turn,
        stream=body.get("stream") is True,
        whole=lambda native: to_response(body, ident, item_id, native),
        convert=StreamConverter(body, ident, item_id).process,
    )


#: (path, methods, handler) of the Responses route; its errors have the /v1 shape (``fake_openai.v1_error``).
ROUTES: list[tuple[str, list[str], Handler]] = [("/v1/responses", ["POST"], responses)]
