"""One entry for both stream modes on Anthropic's Messages API and OpenAI's Responses API (pure functions).

Each request goes to the fake Ollama twice, streamed and not; the stream merged must be the whole answer
Ollama gives, field by field, and the whole answer synthesised must be a stream with Ollama's events, indices
and sequence numbers, which the official clients read back into the same answer. Only what Ollama makes anew
for every request (ids, clocks) is set aside.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from core.cache.request.keys import ROUTES
from core.cache.request.merge import can_merge, merge
from core.cache.request.modes import can_convert
from core.cache.request.recorder import Recorder
from core.cache.request.synthesis import synthesise
from core.cache.request.wire import Unmergeable, sse_data
from tests.fakes.ollama_server import FakeOllama, serve_in_thread

SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
MESSAGES: dict[str, dict[str, Any]] = {
    "text": {"model": "llama3.2", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
    "thinking": {"model": "qwen3:0.6b", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
    "tool": {
        "model": "llama3.2",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
    },
}
RESPONSES: dict[str, dict[str, Any]] = {
    "text": {"model": "llama3.2", "input": "Hi"},
    "reasoning": {"model": "qwen3:0.6b", "input": "Hi"},
    "tool": {
        "model": "llama3.2",
        "input": "Weather in Paris?",
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": SCHEMA}],
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeOllama, str]]:
    with serve_in_thread() as running:
        yield running


def both_modes(server: tuple[FakeOllama, str], path: str, body: dict[str, Any]) -> tuple[list[bytes], bytes]:
    """The stream (as it came, in pieces) and the whole answer the upstream gives ``body`` (deterministic)."""
    with httpx.Client(base_url=server[1], timeout=10) as http:
        with http.stream("POST", path, json={**body, "temperature": 0, "stream": True}) as streamed:
            assert streamed.status_code == 200
            chunks = list(streamed.iter_raw())
        whole = http.post(path, json={**body, "temperature": 0})
        assert whole.status_code == 200
    return chunks, whole.content


def anthropic_without_ids(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "id": "msg"}


def responses_without_ids(response: dict[str, Any]) -> dict[str, Any]:
    """A response with what Ollama makes anew each time (ids, clocks) set aside."""
    output = [{**item, "id": item["type"]} for item in response["output"]]
    return {**response, "id": "resp", "created_at": 0, "completed_at": 0, "output": output}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_a_messages_stream_merges_into_the_message_ollama_sends_whole(
    server: tuple[FakeOllama, str], case: str
) -> None:
    chunks, whole = both_modes(server, "/v1/messages", MESSAGES[case])
    assert can_merge("/v1/messages", chunks) and can_convert("/v1/messages", True, chunks)
    merged = merge("/v1/messages", chunks)
    assert merged.endswith(b"\n")
    assert anthropic_without_ids(json.loads(merged)) == anthropic_without_ids(json.loads(whole))
    assert list(json.loads(merged)) == list(json.loads(whole))  # the fields in Ollama's order


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_a_whole_message_synthesises_the_stream_ollama_sends(server: tuple[FakeOllama, str], case: str) -> None:
    chunks, whole = both_modes(server, "/v1/messages", MESSAGES[case])
    made = synthesise("/v1/messages", whole)
    got, want = sse_data(made), sse_data(chunks)
    assert all(frame.startswith(b"event: ") and frame.endswith(b"\n\n") for frame in made)
    # Ollama sends a block's text token by token, the synthesis in one delta: the same events otherwise
    assert squeezed(got) == squeezed(want)
    assert json.loads(merge("/v1/messages", made)) == json.loads(whole)
    final = want[-2]
    assert got[-2] == final  # message_delta: the stop reason and Ollama's counts
    start = got[0]["message"]
    assert start["usage"] == {"input_tokens": json.loads(whole)["usage"]["input_tokens"], "output_tokens": 0}


@pytest.mark.parametrize("case", sorted(RESPONSES))
def test_a_responses_stream_merges_into_the_response_ollama_sends_whole(
    server: tuple[FakeOllama, str], case: str
) -> None:
    chunks, whole = both_modes(server, "/v1/responses", RESPONSES[case])
    merged = json.loads(merge("/v1/responses", chunks))
    assert responses_without_ids(merged) == responses_without_ids(json.loads(whole))


@pytest.mark.parametrize("case", sorted(RESPONSES))
def test_a_whole_response_synthesises_the_stream_ollama_sends(server: tuple[FakeOllama, str], case: str) -> None:
    chunks, whole = both_modes(server, "/v1/responses", RESPONSES[case])
    made = synthesise("/v1/responses", whole)
    got, want = sse_data(made), sse_data(chunks)
    assert [event["sequence_number"] for event in got] == list(range(len(got)))
    assert squeezed(got) == squeezed(want)
    assert all(list(event) == sorted(event) for event in got)  # Go maps: sorted keys, as Ollama writes them
    assert got[-1]["response"] == json.loads(whole)


def squeezed(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Each event's type and the block or item it is about, a run of deltas to one counted once."""
    out: list[tuple[str, Any]] = []
    for event in events:
        this = (event["type"], event.get("index", event.get("output_index")))
        if not (out and out[-1] == this and this[0].endswith("delta")):
            out.append(this)
    return out


def test_the_official_clients_read_a_synthesised_stream_as_the_whole_answer(server: tuple[FakeOllama, str]) -> None:
    """The SDKs' own stream readers, given a synthesised stream, end with the message or response sent whole."""
    _, whole = both_modes(server, "/v1/messages", MESSAGES["thinking"])
    message = replayed_by_anthropic(synthesise("/v1/messages", whole)).model_dump(exclude_none=True)
    sent = json.loads(whole)
    assert [message[name] for name in ("id", "content", "stop_reason")] == [sent["id"], sent["content"], "end_turn"]
    assert message["usage"]["output_tokens"] == sent["usage"]["output_tokens"] == 12
    _, whole = both_modes(server, "/v1/responses", RESPONSES["tool"])
    response = replayed_by_openai(synthesise("/v1/responses", whole))
    assert response.output[0].model_dump(exclude_none=True) == json.loads(whole)["output"][0]


def replayed_by_anthropic(frames: list[bytes]) -> anthropic.types.Message:
    """The message the anthropic client makes of ``frames`` (its HTTP library is httpx2)."""
    answer = httpx2.Response(200, content=b"".join(frames), headers=SSE_HEADERS)
    transport = httpx2.MockTransport(lambda request: answer)
    with anthropic.Anthropic(
        base_url="http://stored", api_key="x", http_client=httpx2.Client(transport=transport)
    ) as client:
        with client.messages.stream(model="qwen3:0.6b", max_tokens=10, messages=[]) as stream:
            return stream.get_final_message()


def replayed_by_openai(frames: list[bytes]) -> Any:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"".join(frames), headers=SSE_HEADERS))
    with openai.OpenAI(
        base_url="http://stored/v1", api_key="x", http_client=httpx.Client(transport=transport)
    ) as client:
        with client.responses.stream(model="llama3.2", input="x") as stream:
            return stream.get_final_response()


SSE_HEADERS = {"content-type": "text/event-stream"}


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_only_a_stream_that_properly_ended_is_stored(server: tuple[FakeOllama, str], path: str) -> None:
    body = MESSAGES["text"] if path == "/v1/messages" else RESPONSES["text"]
    chunks, whole = both_modes(server, path, body)
    assert judged(path, True, chunks).storable and judged(path, False, [whole]).storable
    verdict = judged(path, True, chunks)
    assert verdict.completion_tokens == 12 and verdict.prompt_tokens > 0
    frames = b"".join(chunks).split(b"\n\n")
    cut = [b"\n\n".join(frames[:-2]) + b"\n\n"]  # the stream without its last event
    assert not judged(path, True, cut).storable
    with pytest.raises(Unmergeable):
        merge(path, cut)
    failure = (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n'
        if path == "/v1/messages"
        else b'event: response.failed\ndata: {"type":"response.failed","sequence_number":3}\n\n'
    )
    assert not judged(path, True, [*chunks[:1], failure, *chunks[1:]]).storable
    error = {"type": "error", "error": {"type": "not_found_error", "message": "no"}}
    assert not judged(path, False, [json.dumps(error).encode()]).storable


def judged(path: str, streamed: bool, chunks: list[bytes]) -> Any:
    recorder = Recorder(ROUTES[path], streamed, 0.0)
    recorder.begin(200, "text/event-stream" if streamed else "application/json")
    for chunk in chunks:
        recorder.feed(chunk, 0.0)
    return recorder.verdict()
