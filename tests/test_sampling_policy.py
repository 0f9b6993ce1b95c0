"""``cache.sampling`` through the real proxy: ``deterministic`` caches only requests that cannot differ
(temperature 0, a fixed seed) and embeddings, ``off`` only embeddings; set in the file, or live through
``PUT /-/settings``; read by the official clients too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread

SAMPLED = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
GREEDY = {**SAMPLED, "options": {"temperature": 0}}
SEEDED = {**SAMPLED, "options": {"temperature": 0.9, "seed": 42}}
EMBED = {"model": "nomic-embed-text", "input": "hi"}
OPENAI_SAMPLED = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
OPENAI_GREEDY = {**OPENAI_SAMPLED, "temperature": 0}


def post(
    proxy: RunningProxy, body: dict[str, Any], path: str = "/api/chat", headers: dict[str, str] | None = None
) -> httpx.Response:
    with proxy.client() as http:
        return http.post(path, json=body, headers=headers or {})


def twice(proxy: RunningProxy, body: dict[str, Any], path: str = "/api/chat") -> list[str]:
    return [post(proxy, body, path).headers["x-cache"] for _ in range(2)]


def put_settings(proxy: RunningProxy, changes: dict[str, Any]) -> httpx.Response:
    return httpx.put(proxy.url + "/-/settings", json=changes, headers=proxy.auth, timeout=30)


def setting(proxy: RunningProxy, name: str) -> dict[str, Any]:
    rows = httpx.get(proxy.url + "/-/settings", timeout=30).json()["settings"]
    return next(row for row in rows if row["name"] == name)


@pytest.fixture
def configured(upstream: tuple[FakeOllama, str], request: pytest.FixtureRequest) -> Iterator[RunningProxy]:
    """The proxy started with ``config.toml`` holding the test's parameter."""
    path = Path(os.environ["OLLACACHE_CONFIG_DIR"]) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(request.param)
    with proxy_in_thread(upstream[1]) as running:
        yield running


def test_by_default_every_request_is_cached(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert twice(proxy, SAMPLED) == ["MISS", "HIT"]
    assert setting(proxy, "cache.sampling")["value"] == "all" and setting(proxy, "cache.bucket")["value"] == 1


def test_deterministic_set_live_caches_only_what_cannot_differ(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert post(proxy, SAMPLED).headers["x-cache"] == "MISS"  # stored while everything is cached
    answer = put_settings(proxy, {"cache.sampling": "deterministic"})
    assert answer.status_code == 200
    assert answer.json()["changes"]["cache.sampling"]["result"] == "applied"
    row = setting(proxy, "cache.sampling")
    assert row["value"] == "deterministic" and not row["pending"] and row["effect"] == "nothing"
    assert twice(proxy, SAMPLED) == ["BYPASS", "BYPASS"]  # the answer stored before is not served either
    assert fake.total_calls("/api/chat") == 3
    assert twice(proxy, GREEDY) == ["MISS", "HIT"]
    assert twice(proxy, SEEDED) == ["MISS", "HIT"]
    assert twice(proxy, EMBED, "/api/embed") == ["MISS", "HIT"]
    assert twice(proxy, OPENAI_SAMPLED, "/v1/chat/completions") == ["BYPASS", "BYPASS"]
    assert twice(proxy, OPENAI_GREEDY, "/v1/chat/completions") == ["MISS", "HIT"]
    assert fake.total_calls("/api/chat") == 5 and fake.total_calls("/v1/chat/completions") == 3
    refused = post(proxy, SAMPLED, headers={"Cache-Control": "only-if-cached"})
    assert refused.status_code == 504 and "cache.sampling" in refused.json()["error"]
    assert fake.total_calls("/api/chat") == 5
    assert put_settings(proxy, {"cache.sampling": None}).json()["changes"]["cache.sampling"]["result"] == "applied"
    assert post(proxy, SAMPLED).headers["x-cache"] == "HIT"  # back to all: the earlier answer serves again


@pytest.mark.parametrize("configured", ['[cache]\nsampling = "off"\n'], indirect=True)
def test_off_in_the_file_caches_embeddings_only(configured: RunningProxy, fake: FakeOllama) -> None:
    assert setting(configured, "cache.sampling")["source"] == "file"
    assert twice(configured, GREEDY) == ["BYPASS", "BYPASS"]
    assert twice(configured, SAMPLED) == ["BYPASS", "BYPASS"]
    assert twice(configured, EMBED, "/api/embed") == ["MISS", "HIT"]
    assert twice(configured, {"model": "nomic-embed-text", "input": "hi"}, "/v1/embeddings") == ["MISS", "HIT"]
    assert fake.total_calls("/api/chat") == 4 and configured.stats()["store"]["entries"] == 2  # type: ignore[index]


@pytest.mark.parametrize("configured", ['[cache]\nsampling = "deterministic"\n'], indirect=True)
def test_the_official_clients_under_the_deterministic_policy(configured: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=configured.url) as client:
        sampled = [client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}]) for _ in range(2)]
        greedy = [
            client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], options={"temperature": 0})
            for _ in range(2)
        ]
        streamed = [
            list(
                client.chat(
                    model="llama3.2", messages=[{"role": "user", "content": "hey"}], options={"seed": 3}, stream=True
                )
            )
            for _ in range(2)
        ]
    assert all(answer.message.content for answer in sampled)
    assert greedy[0].message.content == greedy[1].message.content
    assert streamed[0] == streamed[1] and streamed[0][-1].done
    assert fake.total_calls("/api/chat") == 2 + 1 + 1
    with openai.OpenAI(base_url=configured.url + "/v1", api_key="x", max_retries=0) as compatible:
        answers = [
            compatible.chat.completions.with_raw_response.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}]
            )
            for _ in range(2)
        ]
        seeded = [
            compatible.chat.completions.with_raw_response.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}], seed=5
            )
            for _ in range(2)
        ]
    assert [a.headers["x-cache"] for a in answers] == ["BYPASS", "BYPASS"]
    assert [a.headers["x-cache"] for a in seeded] == ["MISS", "HIT"]
    assert seeded[0].parse().choices[0].message.content == seeded[1].parse().choices[0].message.content


def test_a_bad_policy_is_refused_and_changes_nothing(proxy: RunningProxy, fake: FakeOllama) -> None:
    refused = put_settings(proxy, {"cache.sampling": "sometimes", "cache.bucket": 0})
    assert refused.status_code == 400
    errors = refused.json()["errors"]
    assert "one of all, deterministic, off" in errors["cache.sampling"]
    assert "a whole number from 1 to 32" in errors["cache.bucket"]
    assert put_settings(proxy, {"cache.bucket": 33}).status_code == 400
    assert twice(proxy, SAMPLED) == ["MISS", "HIT"]
