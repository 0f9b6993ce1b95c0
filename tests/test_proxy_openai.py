"""The proxy with the official OpenAI client on the /v1 routes."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture
def client(proxy: RunningProxy) -> openai.OpenAI:
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ollama", max_retries=0) as client:
        yield client


def test_chat_completions_are_cached(client: openai.OpenAI, fake: FakeOllama) -> None:
    first = client.chat.completions.with_raw_response.create(model="llama3.2", messages=MESSAGES, temperature=0)
    second = client.chat.completions.with_raw_response.create(model="llama3.2", messages=MESSAGES, temperature=0)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().usage.completion_tokens == first.parse().usage.completion_tokens
    assert fake.total_calls("/v1/chat/completions") == 1


def test_streamed_chat_completions_replay_every_delta(client: openai.OpenAI, fake: FakeOllama) -> None:
    def collect() -> list[str | None]:
        stream = client.chat.completions.create(
            model="llama3.2", messages=MESSAGES, temperature=0, stream=True, stream_options={"include_usage": True}
        )
        return [
            chunk.choices[0].delta.content if chunk.choices else f"usage:{chunk.usage.total_tokens}" for chunk in stream
        ]

    first, second = collect(), collect()
    assert second == first and len(first) > 3 and first[-1].startswith("usage:")
    assert fake.total_calls("/v1/chat/completions") == 1


def test_completions_and_embeddings_are_cached(client: openai.OpenAI, fake: FakeOllama) -> None:
    texts = [client.completions.create(model="llama3.2", prompt="Once upon", seed=3).choices[0].text for _ in range(2)]
    assert texts[0] == texts[1] and texts[0]
    vectors = [client.embeddings.create(model="nomic-embed-text", input=["a", "b"]).data for _ in range(2)]
    assert [v.embedding for v in vectors[0]] == [v.embedding for v in vectors[1]]
    assert fake.total_calls("/v1/completions") == 1 and fake.total_calls("/v1/embeddings") == 1


def test_openai_errors_reach_the_client_in_openai_shape(client: openai.OpenAI, fake: FakeOllama) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="missing-model", messages=MESSAGES)
    assert "not found" in str(caught.value)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing-model", messages=MESSAGES)
    assert fake.total_calls("/v1/chat/completions") == 2


def test_stream_null_on_openai_routes_means_not_streamed(proxy: RunningProxy, fake: FakeOllama) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "stream": None}
    with proxy.client() as http:
        assert [http.post("/v1/chat/completions", json=body).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
