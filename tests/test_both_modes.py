"""One entry serves both stream modes, through the real proxy in front of the fake Ollama: a streamed
answer recorded answers a non-streamed request and the other way round, as a HIT that never calls the
upstream, read by raw HTTP and by the official ``ollama`` and ``openai`` clients as they read Ollama's."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import ollama
import openai
import pytest

from core.cache.request.keys import legacy_key
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

HI = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "the weather in a city",
            "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
        },
    }
]
NATIVE = {
    "/api/chat": {"model": "llama3.2", "messages": HI, "options": {"temperature": 0}},
    "/api/generate": {"model": "llama3.2", "prompt": "hi", "options": {"temperature": 0}},
}
OPENAI = {
    "/v1/chat/completions": {"model": "llama3.2", "messages": HI, "temperature": 0},
    "/v1/completions": {"model": "llama3.2", "prompt": "hi", "temperature": 0},
}
USAGE = {"stream_options": {"include_usage": True}}
STAMPS = {"created_at", "total_duration", "load_duration", "prompt_eval_duration", "eval_duration", "id", "created"}


def unstamped(value: Any) -> Any:
    """An answer without what the upstream stamps anew on every call (its clock, its ids); ``[DONE]`` as it is."""
    return {k: v for k, v in value.items() if k not in STAMPS} if isinstance(value, dict) else value


def post(url: str, path: str, body: dict[str, Any], stream: bool) -> httpx.Response:
    return httpx.post(url + path, json={**body, "stream": stream}, timeout=30)


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def events(response: httpx.Response) -> list[Any]:
    data = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


@pytest.mark.parametrize("path", NATIVE)
def test_a_streamed_entry_answers_a_native_whole_request(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    fake, url = upstream
    assert post(proxy.url, path, NATIVE[path], stream=True).headers["x-cache"] == "MISS"
    whole = post(proxy.url, path, NATIVE[path], stream=False)
    assert whole.headers["x-cache"] == "HIT" and fake.total_calls(path) == 1
    assert whole.headers["content-type"] == "application/json; charset=utf-8"
    assert unstamped(whole.json()) == unstamped(post(url, path, NATIVE[path], stream=False).json())  # Ollama's own


@pytest.mark.parametrize("path", NATIVE)
def test_a_whole_entry_answers_a_native_streamed_request(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    fake, url = upstream
    assert post(proxy.url, path, NATIVE[path], stream=False).headers["x-cache"] == "MISS"
    streamed = post(proxy.url, path, NATIVE[path], stream=True)
    assert streamed.headers["x-cache"] == "HIT" and fake.total_calls(path) == 1
    assert streamed.headers["content-type"] == "application/x-ndjson"
    made, real = lines(streamed), lines(post(url, path, NATIVE[path], stream=True))
    assert [line["done"] for line in made] == [False, True]
    assert unstamped(made[-1]) == unstamped(real[-1])  # ends as Ollama ends a stream: the statistics, the reason
    text = "message" if path == "/api/chat" else "response"
    joined = (
        "".join(line["message"]["content"] for line in made)
        if text == "message"
        else "".join(line["response"] for line in made)
    )
    assert joined == (
        "".join(line["message"]["content"] for line in real)
        if text == "message"
        else "".join(line["response"] for line in real)
    )


@pytest.mark.parametrize("path", OPENAI)
def test_a_whole_entry_answers_an_openai_stream_ending_as_ollama_ends_one(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    fake, url = upstream
    for extra in ({}, USAGE):  # include_usage is not part of the key: one entry serves both
        body = {**OPENAI[path], **extra}
        assert post(proxy.url, path, body, stream=False).headers["x-cache"] == ("HIT" if extra else "MISS")
        calls = fake.total_calls(path)
        streamed = post(proxy.url, path, body, stream=True)
        assert streamed.headers["x-cache"] == "HIT" and streamed.headers["content-type"] == "text/event-stream"
        assert fake.total_calls(path) == calls  # the hit never reached the upstream
        made, real = events(streamed), events(post(url, path, body, stream=True))
        assert made[-1] == real[-1] == "[DONE]"
        tail = 3 if extra else 2  # the finish chunk, and the usage chunk when asked
        assert [unstamped(e) for e in made[-tail:-1]] == [unstamped(e) for e in real[-tail:-1]]
        assert ("usage" in made[-2]) is bool(extra) and all(e["object"] == real[0]["object"] for e in made[:-1])


@pytest.mark.parametrize("path", OPENAI)
def test_an_openai_stream_with_usage_answers_a_whole_request(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    fake, url = upstream
    body = {**OPENAI[path], **USAGE}
    assert post(proxy.url, path, body, stream=True).headers["x-cache"] == "MISS"
    whole = post(proxy.url, path, body, stream=False)
    assert whole.headers["x-cache"] == "HIT" and fake.total_calls(path) == 1
    assert whole.headers["content-type"] == "application/json"
    assert unstamped(whole.json()) == unstamped(post(url, path, body, stream=False).json())


def test_an_openai_stream_recorded_for_a_client_that_did_not_ask_usage_serves_every_request(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str]
) -> None:
    """The proxy asks the upstream for the stream's usage (the one change it makes to a forwarded body), keeps it
    from the client that did not ask, live and on replay, and so serves whole requests from the stream too."""
    fake, url = upstream
    path, body = "/v1/chat/completions", OPENAI["/v1/chat/completions"]
    live = post(proxy.url, path, body, stream=True)
    assert live.headers["x-cache"] == "MISS" and fake.received(path)[0]["stream_options"] == {"include_usage": True}
    real = events(post(url, path, body, stream=True))  # what the upstream sends a client that did not ask
    assert [unstamped(e) for e in events(live)] == [unstamped(e) for e in real]
    replayed = post(proxy.url, path, body, stream=True)
    assert replayed.headers["x-cache"] == "HIT" and [unstamped(e) for e in events(replayed)] == [
        unstamped(e) for e in real
    ]
    asked = post(proxy.url, path, {**body, **USAGE}, stream=True)
    assert asked.headers["x-cache"] == "HIT" and events(asked)[-2]["usage"]["total_tokens"] > 0
    whole = post(proxy.url, path, body, stream=False)
    assert whole.headers["x-cache"] == "HIT" and whole.json()["usage"]["total_tokens"] > 0
    assert fake.total_calls(path) == 2  # the proxy's one call and the direct one


def test_a_stream_without_usage_from_an_upstream_that_ignores_the_option_is_an_honest_miss(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    """llama-cpp-python's server sends no usage whatever is asked: nothing is invented, a whole request (or one
    asking usage) goes upstream, and the whole answer stored in place of the stream then serves both."""
    fake.configure(ignore_include_usage=True)
    path, body = "/v1/chat/completions", OPENAI["/v1/chat/completions"]
    assert post(proxy.url, path, body, stream=True).headers["x-cache"] == "MISS"
    asking = post(proxy.url, path, {**body, **USAGE}, stream=True)
    assert asking.headers["x-cache"] == "MISS"  # the stored stream cannot give the usage asked for
    whole = post(proxy.url, path, body, stream=False)
    assert whole.headers["x-cache"] == "MISS" and whole.json()["usage"]["total_tokens"] > 0
    assert [post(proxy.url, path, body, stream=s).headers["x-cache"] for s in (True, False)] == ["HIT", "HIT"]
    assert fake.total_calls(path) == 3 and proxy.stats()["store"]["entries"] == 1  # type: ignore[index]


def test_an_entry_stored_when_include_usage_was_in_the_key_is_still_found(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    path, body = "/v1/chat/completions", {**OPENAI["/v1/chat/completions"], **USAGE}
    first = post(proxy.url, path, body, stream=True)
    assert proxy.server is not None
    engine = proxy.server.engine
    engine.cache.flush()  # the writer's batch reaches the store
    stored = engine.store.get(first.headers["x-cache-key"])
    assert stored is not None
    legacy = legacy_key(path, {**body, "stream": True}, engine.keys.context_for("llama3.2:latest", None, None))
    # the store as a version that keyed include_usage left it
    assert httpx.delete(f"{proxy.url}/-/entries/{stored.key}", headers=proxy.auth).status_code == 200
    engine.store.put(dataclasses.replace(stored, key=legacy))
    again = post(proxy.url, path, body, stream=True)
    assert again.headers["x-cache"] == "HIT" and again.headers["x-cache-key"] == legacy
    assert events(again) == events(first) and fake.total_calls(path) == 1


def test_the_ollama_client_reads_either_mode_from_one_entry(proxy: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=proxy.url) as client:
        parts = list(
            client.chat(model="qwen3:0.6b", messages=HI, think=True, tools=TOOLS, options={"seed": 1}, stream=True)
        )
        whole = client.chat(model="qwen3:0.6b", messages=HI, think=True, tools=TOOLS, options={"seed": 1})
        assert whole.message.thinking == "".join(p.message.thinking or "" for p in parts)
        assert whole.message.tool_calls == [c for p in parts for c in p.message.tool_calls or []]
        assert whole.done and whole.eval_count == parts[-1].eval_count and whole.done_reason == "stop"
        answer = client.generate(model="llama3.2", prompt="hi", options={"temperature": 0})
        pieces = list(client.generate(model="llama3.2", prompt="hi", options={"temperature": 0}, stream=True))
        assert "".join(p.response for p in pieces) == answer.response and pieces[-1].done
        assert pieces[-1].context == answer.context and pieces[-1].eval_count == answer.eval_count
    assert fake.total_calls("/api/chat") == fake.total_calls("/api/generate") == 1


def test_the_openai_client_reads_either_mode_from_one_entry(proxy: RunningProxy, fake: FakeOllama) -> None:
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0) as client:
        asked: dict[str, Any] = {"model": "qwen3:0.6b", "messages": HI, "tools": TOOLS, "seed": 2}
        whole = client.chat.completions.create(**asked)
        chunks = list(client.chat.completions.create(**asked, stream=True))
        [call] = whole.choices[0].message.tool_calls or []
        streamed_calls = [c for chunk in chunks if chunk.choices for c in chunk.choices[0].delta.tool_calls or []]
        assert [(c.id, c.function.name, c.function.arguments) for c in streamed_calls] == [
            (call.id, call.function.name, call.function.arguments)
        ]
        assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "tool_calls"
        text: dict[str, Any] = {"model": "llama3.2", "prompt": "hi", "temperature": 0, **USAGE}
        streamed = list(client.completions.create(**text, stream=True))
        answer = client.completions.create(**text)  # the same key: include_usage sent, though not streaming
        assert answer.choices[0].text == "".join(c.choices[0].text for c in streamed if c.choices)
        assert answer.usage == streamed[-1].usage and answer.usage is not None and answer.usage.total_tokens > 0
    assert fake.total_calls("/v1/chat/completions") == fake.total_calls("/v1/completions") == 1
