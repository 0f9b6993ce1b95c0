"""The proxy caches Anthropic's Messages API and OpenAI's Responses API, read by the official clients.

One entry serves both stream modes; fields that cannot change the answer (``metadata``, ``cache_control``
markers, ``store``) share it; credentials and server-side conversations keep entries apart or pass through;
only an answer that properly ended is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

ASK: Any = [{"role": "user", "content": "Weather in Paris?"}]
SCHEMA: Any = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
ZERO: Any = {"temperature": 0}


@pytest.fixture
def claude(proxy: RunningProxy) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=proxy.url, api_key="ollama", max_retries=0) as client:
        yield client


@pytest.fixture
def oai(proxy: RunningProxy) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ollama", max_retries=0) as client:
        yield client


def message(claude: anthropic.Anthropic, **request: Any) -> tuple[str, anthropic.types.Message]:
    """``X-Cache`` and the message, asked whole."""
    raw = claude.messages.with_raw_response.create(
        **{"model": "qwen3:0.6b", "max_tokens": 100, "messages": ASK, **request}
    )
    return raw.headers["x-cache"], raw.parse()


def streamed_message(claude: anthropic.Anthropic, **request: Any) -> tuple[str, anthropic.types.Message, list[str]]:
    """``X-Cache``, the message the client's stream reader makes, and the event types it read."""
    body = {"model": "qwen3:0.6b", "max_tokens": 100, "messages": ASK, **request}
    with claude.messages.stream(**body) as stream:
        kinds = [event.type for event in stream]
        return stream.response.headers["x-cache"], stream.get_final_message(), kinds


def same(one: anthropic.types.Message, other: anthropic.types.Message) -> bool:
    """The two messages say the same (the stream reader's parsed-output fields set aside)."""
    fields = {"id", "model", "role", "content", "stop_reason", "usage"}
    return one.model_dump(include=fields, exclude_none=True) == other.model_dump(include=fields, exclude_none=True)


def test_a_message_is_answered_from_the_cache_in_both_modes(claude: anthropic.Anthropic, fake: FakeOllama) -> None:
    first, whole = message(claude, extra_body=ZERO)
    again, cached = message(claude, extra_body=ZERO)
    replayed, streamed, kinds = streamed_message(claude, extra_body=ZERO)
    assert (first, again, replayed) == ("MISS", "HIT", "HIT")
    assert same(cached, whole) and same(streamed, whole)
    assert [block.type for block in whole.content] == ["thinking", "text"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert fake.total_calls("/v1/messages") == 1


def test_a_streamed_message_answers_the_whole_request(claude: anthropic.Anthropic, fake: FakeOllama) -> None:
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}]
    first, streamed, _ = streamed_message(claude, model="llama3.2", tools=tools, extra_body=ZERO)
    again, whole = message(claude, model="llama3.2", tools=tools, extra_body=ZERO)
    assert (first, again) == ("MISS", "HIT")
    assert same(whole, streamed) and whole.stop_reason == "tool_use" and whole.content[0].type == "tool_use"
    assert fake.total_calls("/v1/messages") == 1


def test_metadata_and_cache_control_markers_share_an_entry(claude: anthropic.Anthropic, fake: FakeOllama) -> None:
    plain = {"system": [{"type": "text", "text": "Be brief."}], "extra_body": ZERO}
    marked = {
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "someone"},
        "extra_body": ZERO,
    }
    assert message(claude, **plain)[0] == "MISS"
    assert message(claude, **marked)[0] == "HIT"
    assert message(claude, **{**plain, "system": [{"type": "text", "text": "Be long."}]})[0] == "MISS"


def test_anthropic_api_keys_keep_their_entries_apart(proxy: RunningProxy, fake: FakeOllama) -> None:
    def ask(key: str) -> str:
        with anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0) as client:
            return message(client, extra_body=ZERO)[0]

    assert [ask("alice"), ask("bob"), ask("alice")] == ["MISS", "MISS", "HIT"]


def dumped(items: Any) -> list[dict[str, Any]]:
    """Output items as sent (the stream reader's parsed fields, all None, set aside)."""
    return [item.model_dump(exclude_none=True) for item in items]


def test_a_response_is_answered_from_the_cache_in_both_modes(oai: openai.OpenAI, fake: FakeOllama) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": SCHEMA}]
    request: Any = {"model": "llama3.2", "input": "Weather in Paris?", "tools": tools, "temperature": 0}
    first = oai.responses.with_raw_response.create(**request)
    with oai.responses.stream(**request) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_response()
    whole = first.parse()
    assert first.headers["x-cache"] == "MISS" and fake.total_calls("/v1/responses") == 1
    assert dumped(streamed.output) == dumped(whole.output) and streamed.usage == whole.usage
    assert kinds[-1] == "response.completed" and "response.function_call_arguments.delta" in kinds
    again = oai.responses.with_raw_response.create(**{**request, "store": False, "metadata": {"run": "2"}})
    assert again.headers["x-cache"] == "HIT" and dumped(again.parse().output) == dumped(whole.output)
    assert fake.total_calls("/v1/responses") == 1


def test_a_streamed_response_answers_the_whole_request(oai: openai.OpenAI, fake: FakeOllama) -> None:
    with oai.responses.stream(model="qwen3:0.6b", input="Hi", temperature=0) as stream:
        streamed = stream.get_final_response()
    whole = oai.responses.with_raw_response.create(model="qwen3:0.6b", input="Hi", temperature=0)
    assert whole.headers["x-cache"] == "HIT"
    assert whole.parse().output_text == streamed.output_text != ""
    assert [item.type for item in whole.parse().output] == ["reasoning", "message"]
    assert fake.total_calls("/v1/responses") == 1


def test_a_response_that_continues_a_stored_conversation_passes_through(proxy: RunningProxy, fake: FakeOllama) -> None:
    body = {"model": "llama3.2", "input": "And tomorrow?", "previous_response_id": "resp_1", "temperature": 0}
    with proxy.client() as http:
        outcomes = [http.post("/v1/responses", json=body).headers["x-cache"] for _ in range(2)]
    assert outcomes == ["BYPASS", "BYPASS"] and fake.total_calls("/v1/responses") == 2


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "llama3.2", "max_tokens": 50, "messages": ASK, "stream": True, **ZERO}),
        ("/v1/responses", {"model": "llama3.2", "input": "Hi", "stream": True, **ZERO}),
    ],
)
def test_a_stream_that_fails_or_is_cut_is_never_stored(
    proxy: RunningProxy, fake: FakeOllama, path: str, body: dict[str, Any]
) -> None:
    with proxy.client() as http:
        fake.configure(error_after_chunks=3)  # Ollama's runner dies: the stream just ends, unfinished
        failed = http.post(path, json=body)
        assert failed.headers["x-cache"] == "MISS" and b"message_stop" not in failed.content
        assert b"response.completed" not in failed.content
        fake.configure(error_after_chunks=None, drop_after_chunks=3)  # the connection is cut
        cut = http.post(path, json=body)
        assert cut.headers["x-cache"] == "MISS" and cut.text.rstrip().splitlines()[-2] == "event: error"
        fake.configure(drop_after_chunks=None)
        assert [http.post(path, json=body).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert fake.total_calls(path) == 3


def test_a_cut_stream_ends_as_each_client_reads_a_failure(
    claude: anthropic.Anthropic, oai: openai.OpenAI, fake: FakeOllama
) -> None:
    fake.configure(drop_after_chunks=3)
    with pytest.raises(anthropic.APIStatusError, match="before it finished"):
        with claude.messages.stream(model="llama3.2", max_tokens=50, messages=ASK) as stream:
            stream.get_final_message()
    with oai.responses.create(model="llama3.2", input="Hi", stream=True) as events:
        read = list(events)
    last = read[-1]
    assert last.type == "error" and "before it finished" in last.message
    assert [event.sequence_number for event in read] == list(range(len(read)))  # numbered after those sent


def test_both_routes_are_counted_per_route(
    claude: anthropic.Anthropic, oai: openai.OpenAI, proxy: RunningProxy
) -> None:
    message(claude, extra_body=ZERO)
    message(claude, extra_body=ZERO)
    oai.responses.create(model="llama3.2", input="Hi", temperature=0)
    with httpx.Client() as http:
        routes = http.get(proxy.url + "/-/stats").json()["by_route"]
    assert routes["/v1/messages"]["hits"] == 1 and routes["/v1/responses"]["misses"] == 1
