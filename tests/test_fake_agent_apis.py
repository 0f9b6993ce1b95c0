"""The fake Ollama speaks Ollama's Anthropic Messages and OpenAI Responses APIs to the official clients.

One server (real sockets on 127.0.0.1) is shared by the module and reset before every test. Answers are
a function of the request when sampling is deterministic (``temperature: 0``), so a streamed and a
non-streamed request get the same answer. What is asserted is what Ollama's conversion layers send
(``anthropic/anthropic.go``, ``openai/responses.go`` and their middleware), differences from the
official APIs included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.fakes.fake_config import DEFAULT_CONFIG
from tests.fakes.ollama_server import FakeOllama, serve_in_thread

TOKENS = DEFAULT_CONFIG["tokens"]
ASK: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
}
ANTHROPIC_TOOL: Any = {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER_SCHEMA}
RESPONSES_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather",
    "parameters": WEATHER_SCHEMA,
}
ZERO: Any = {"temperature": 0}  # deterministic sampling; the anthropic client has no temperature argument
TEXT_EVENTS = [
    "message_start",
    "content_block_start",
    *["content_block_delta"] * TOKENS,
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeOllama, str]]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def fake(server: tuple[FakeOllama, str]) -> FakeOllama:
    server[0].reset()
    return server[0]


@pytest.fixture
def http(server: tuple[FakeOllama, str], fake: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[1], timeout=10) as client:
        yield client


@pytest.fixture
def claude(server: tuple[FakeOllama, str], fake: FakeOllama) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server[1], api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture
def oai(server: tuple[FakeOllama, str], fake: FakeOllama) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server[1] + "/v1", api_key="x", max_retries=0) as client:
        yield client


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every event of an SSE body written as Ollama writes it."""
    frames = text.split("\n\n")
    assert frames[-1] == "", text
    pairs = [frame.split("\n") for frame in frames[:-1]]
    assert all(len(p) == 2 and p[0].startswith("event: ") and p[1].startswith("data: ") for p in pairs), text
    return [(p[0][len("event: ") :], json.loads(p[1][len("data: ") :])) for p in pairs]


def post_sse(http: httpx.Client, path: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    resp = http.post(path, json={**body, "stream": True})
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["cache-control"] == "no-cache"
    return sse(resp.text)


# --- Anthropic Messages: POST /v1/messages ------------------------------------------------------


def test_messages_create_answers_a_deterministic_text_message(claude: anthropic.Anthropic, fake: FakeOllama) -> None:
    first = claude.messages.create(model="llama3.2", max_tokens=100, messages=ASK, extra_body=ZERO)
    again = claude.messages.create(model="llama3.2", max_tokens=100, messages=ASK, extra_body=ZERO)
    assert re.fullmatch(r"msg_[0-9a-f]{24}", first.id) and first.id != again.id
    assert (first.type, first.role, first.model, first.stop_reason) == ("message", "assistant", "llama3.2", "end_turn")
    assert [b.type for b in first.content] == ["text"] and first.content == again.content
    assert first.usage.output_tokens == TOKENS and first.usage.input_tokens > 0
    capped = claude.messages.create(model="llama3.2", max_tokens=3, messages=ASK, extra_body=ZERO)
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 3
    assert first.content[0].text.startswith(capped.content[0].text)  # type: ignore[union-attr]
    assert fake.total_calls("/v1/messages") == 3
    assert fake.received("/v1/messages")[0]["max_tokens"] == 100


def test_messages_wire_shape_is_ollamas(http: httpx.Client) -> None:
    body = {"model": "llama3.2", "max_tokens": 100, "messages": ASK, "temperature": 0}
    whole = http.post("/v1/messages", json=body)
    assert whole.headers["content-type"] == "application/json" and whole.text.endswith("}\n")
    assert list(whole.json()) == ["id", "type", "role", "model", "content", "stop_reason", "usage"]  # no stop_sequence
    events = post_sse(http, "/v1/messages", body)
    assert [name for name, _ in events] == TEXT_EVENTS  # no ping
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["content"] == [] and "stop_reason" not in start and start["id"] != whole.json()["id"]
    assert start["usage"] == {"input_tokens": 5, "output_tokens": 0}  # Ollama's estimate: 21 bytes / 4
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == whole.json()["content"][0]["text"]
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": whole.json()["usage"],
    }


def test_messages_stream_merges_to_the_created_message_with_thinking(claude: anthropic.Anthropic) -> None:
    whole = claude.messages.create(model="qwen3:0.6b", max_tokens=100, messages=ASK, extra_body=ZERO)
    with claude.messages.stream(model="qwen3:0.6b", max_tokens=100, messages=ASK, extra_body=ZERO) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert [b.type for b in whole.content] == [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == whole.content[0].thinking != ""  # type: ignore[union-attr]
    assert final.content[1].text == whole.content[1].text != ""  # type: ignore[union-attr]
    assert final.stop_reason == whole.stop_reason == "end_turn" and final.usage.output_tokens == TOKENS
    assert final.usage.input_tokens == whole.usage.input_tokens  # message_delta carries Ollama's count
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    assert "signature_delta" not in kinds and kinds[-1] == "message_stop"


def test_messages_thinking_can_be_disabled_and_is_ignored_by_models_that_cannot_think(
    claude: anthropic.Anthropic, fake: FakeOllama
) -> None:
    off = claude.messages.create(
        model="qwen3:0.6b", max_tokens=100, messages=ASK, thinking={"type": "disabled"}, extra_body=ZERO
    )
    assert [b.type for b in off.content] == ["text"]
    relaxed = claude.messages.create(
        model="llama3.2", max_tokens=100, messages=ASK, thinking={"type": "enabled", "budget_tokens": 50}
    )
    assert [b.type for b in relaxed.content] == ["text"]  # the native API would refuse: "does not support thinking"
    assert fake.received("/v1/messages")[1]["thinking"] == {"type": "enabled", "budget_tokens": 50}


def test_messages_tool_use_as_a_whole_block(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    request: Any = {
        "model": "llama3.2",
        "max_tokens": 100,
        "messages": ASK,
        "tools": [ANTHROPIC_TOOL],
    }
    whole = claude.messages.create(**request, extra_body=ZERO)
    assert whole.stop_reason == "tool_use" and [b.type for b in whole.content] == ["tool_use"]
    use: Any = whole.content[0]
    assert re.fullmatch(r"call_[a-z0-9]{8}", use.id) and use.name == "get_weather" and set(use.input) == {"city"}
    with claude.messages.stream(**request, extra_body=ZERO) as stream:
        final = stream.get_final_message()
    assert final.content == whole.content and final.stop_reason == "tool_use"
    events = post_sse(http, "/v1/messages", {**request, **ZERO})
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    block, delta = events[1][1]["content_block"], events[2][1]["delta"]
    assert block == {"type": "tool_use", "id": use.id, "name": "get_weather", "input": {}}
    assert delta["type"] == "input_json_delta" and json.loads(delta["partial_json"]) == use.input
    answered = claude.messages.create(
        **{
            **request,
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
            ],
        }
    )
    assert answered.stop_reason == "end_turn" and [b.type for b in answered.content] == ["text"]


def test_messages_errors_have_anthropics_shape(
    claude: anthropic.Anthropic, http: httpx.Client, fake: FakeOllama
) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=10, messages=ASK)
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model 'nope' not found"},
        "request_id": missing.value.body["request_id"],  # type: ignore[index]
    }
    bad = http.post("/v1/messages", json={"model": "llama3.2", "messages": ASK})
    assert (bad.status_code, bad.headers["content-type"]) == (400, "application/json; charset=utf-8")
    assert bad.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens is required and must be positive",
    }
    assert re.fullmatch(r"req_[0-9a-f]{24}", bad.json()["request_id"])
    unnamed = [{"role": "assistant", "content": [{"type": "tool_use", "id": "x"}]}]
    with pytest.raises(anthropic.BadRequestError, match="tool_use block missing required 'name' field"):
        claude.messages.create(model="llama3.2", max_tokens=10, messages=unnamed)
    fake.configure(fail_status=503, fail_message="busy", fail_count=1)
    failed = http.post("/v1/messages", json={"model": "llama3.2", "max_tokens": 10, "messages": ASK})
    assert failed.status_code == 503 and failed.json()["error"] == {"type": "overloaded_error", "message": "busy"}
    assert fake.total_calls("/v1/messages") == 4


# --- OpenAI Responses: POST /v1/responses -------------------------------------------------------


def test_responses_create_and_stream_give_the_same_text(oai: openai.OpenAI, http: httpx.Client) -> None:
    whole = oai.responses.create(model="llama3.2", input="Weather in Paris?", temperature=0)
    assert re.fullmatch(r"resp_\d+", whole.id) and whole.status == "completed" and whole.model == "llama3.2"
    assert [item.type for item in whole.output] == ["message"] and whole.output_text
    assert whole.usage is not None and whole.usage.output_tokens == TOKENS
    assert whole.usage.total_tokens == whole.usage.input_tokens + TOKENS
    with oai.responses.create(model="llama3.2", input="Weather in Paris?", temperature=0, stream=True) as stream:
        events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * TOKENS,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done: Any = events[-1]
    assert done.response.output_text == whole.output_text and done.response.usage == whole.usage
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    raw = post_sse(http, "/v1/responses", {"model": "llama3.2", "input": "x"})
    assert all(list(data) == sorted(data) for _, data in raw)  # Go maps: sorted keys


def test_responses_stream_helper_merges_reasoning_and_text(oai: openai.OpenAI) -> None:
    whole = oai.responses.create(model="qwen3:0.6b", input="hi", temperature=0)
    with oai.responses.stream(model="qwen3:0.6b", input="hi", temperature=0) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert [i.type for i in whole.output] == [i.type for i in final.output] == ["reasoning", "message"]
    reasoning: Any = whole.output[0]
    assert reasoning.id == f"rs_{whole.id}" and reasoning.summary[0].text == reasoning.encrypted_content != ""
    streamed: Any = final.output[0]
    assert re.fullmatch(r"rs_\d+", streamed.id) and streamed.summary == reasoning.summary
    assert final.output_text == whole.output_text
    assert kinds.count("response.reasoning_summary_text.delta") == TOKENS // 2
    assert "response.reasoning_summary_part.added" not in kinds
    plain = oai.responses.create(model="qwen3:0.6b", input="hi", reasoning={"effort": "none"})
    assert [i.type for i in plain.output] == ["message"]


def test_responses_function_call(oai: openai.OpenAI, http: httpx.Client) -> None:
    request: Any = {"model": "llama3.2", "input": "Weather in Paris?", "tools": [RESPONSES_TOOL], "temperature": 0}
    whole = oai.responses.create(**request)
    assert [i.type for i in whole.output] == ["function_call"]  # no message item beside a call
    call: Any = whole.output[0]
    assert call.id == f"fc_{whole.id}_0" and call.status == "completed" and call.name == "get_weather"
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.call_id) and set(json.loads(call.arguments)) == {"city"}
    events = post_sse(http, "/v1/responses", request)
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, delta = events[2][1]["item"], events[3][1]
    assert (added["status"], added["arguments"], added["call_id"]) == ("in_progress", "", call.call_id)
    assert delta["delta"] == call.arguments and re.fullmatch(r"fc_\d+_0", delta["item_id"])
    assert events[-1][1]["response"]["tools"] == [
        {
            "description": "Weather",
            "name": "get_weather",
            "parameters": WEATHER_SCHEMA,
            "strict": None,
            "type": "function",
        }
    ]
    answered = oai.responses.create(
        **{
            **request,
            "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
            ],
        }
    )
    assert [i.type for i in answered.output] == ["message"] and answered.output_text


def test_responses_errors_have_the_openai_shape(oai: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.create(model="nope", input="hi")
    assert missing.value.body == {
        "message": "model 'nope' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError, match="invalid reasoning value"):
        oai.responses.create(model="llama3.2", input="hi", reasoning={"effort": "huge"})  # type: ignore[typeddict-item]
    odd = http.post("/v1/responses", json={"model": "llama3.2", "input": [{"content": "hi"}]})
    assert (
        odd.status_code == 400
        and odd.json()["error"]["message"] == "input[0]: input item missing required 'type' field"
    )


# --- faults ---------------------------------------------------------------------------------------


def test_a_runner_failing_mid_answer_ends_each_stream_as_ollama_does(
    fake: FakeOllama,
    claude: anthropic.Anthropic,
    oai: openai.OpenAI,
    http: httpx.Client,
    server: tuple[FakeOllama, str],
) -> None:
    fake.configure(error_after_chunks=3, fail_message="runner died")
    with claude.messages.stream(model="llama3.2", max_tokens=100, messages=ASK, extra_body=ZERO) as stream:
        kinds = [event.type for event in stream]
        partial = stream.get_final_message()
    # three text chunks, then nothing: no error event, no content_block_stop, message_delta nor message_stop
    assert kinds == ["message_start", "content_block_start", *["content_block_delta", "text"] * 3]
    assert partial.stop_reason is None and len(partial.content[0].text.split()) == 3  # type: ignore[union-attr]
    with oai.responses.stream(model="llama3.2", input="hi", temperature=0) as events:
        seen = [event.type for event in events]
        with pytest.raises(RuntimeError, match="response.completed"):
            events.get_final_response()
    assert seen[-1] == "response.output_text.delta" and seen.count("response.output_text.delta") == 3
    assert not {"response.failed", "error", "response.completed"} & set(seen)
    native = http.post("/api/chat", json={"model": "llama3.2", "messages": ASK})
    assert [json.loads(line) for line in native.text.splitlines()][-1] == {"error": "runner died"}
    with ollama.Client(host=server[1]) as oll, pytest.raises(ollama.ResponseError, match="runner died"):
        list(oll.chat(model="llama3.2", messages=ASK, stream=True))
    chat = http.post("/v1/chat/completions", json={"model": "llama3.2", "messages": ASK, "stream": True})
    last = json.loads(chat.text.split("\n\n")[-2][len("data: ") :])
    assert "[DONE]" not in chat.text and last["model"] == "" and last["choices"][0]["delta"] == {"content": ""}
    whole = http.post("/v1/messages", json={"model": "llama3.2", "max_tokens": 100, "messages": ASK})
    assert whole.status_code == 500 and whole.json()["error"] == {"type": "api_error", "message": "runner died"}
    fake.configure(error_after_chunks=0)
    first = http.post("/v1/responses", json={"model": "llama3.2", "input": "hi", "stream": True})
    assert (first.status_code, first.headers["content-type"]) == (500, "application/json")
    assert first.json()["error"]["message"] == "runner died"


@pytest.mark.parametrize(
    "path,body",
    [
        ("/v1/messages", {"model": "llama3.2", "max_tokens": 100, "messages": ASK, "stream": True}),
        ("/v1/responses", {"model": "llama3.2", "input": "hi", "stream": True}),
    ],
)
def test_drop_after_chunks_counts_sse_events(
    fake: FakeOllama, http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    fake.configure(drop_after_chunks=3)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", path, json=body) as resp:
            assert resp.status_code == 200
            for part in resp.iter_bytes():
                received += part
    assert received.count(b"event: ") == 3 and received.endswith(b"\n\n")
    assert fake.received(path) == [body] and fake.total_calls(path) == 1
