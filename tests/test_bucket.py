"""``cache.bucket = N`` through the real proxy: a sampled request keeps up to N distinct answers, recorded one
per miss while the bucket fills and served at random once it is full; deterministic requests and embeddings
keep one; deleting the key deletes its whole bucket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread, wait_for

SAMPLED = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
GREEDY = {**SAMPLED, "options": {"temperature": 0}}


def post(proxy: RunningProxy, body: dict[str, Any], path: str = "/api/chat") -> httpx.Response:
    with proxy.client() as http:
        return http.post(path, json=body)


def entries(proxy: RunningProxy) -> int:
    return int(proxy.stats()["store"]["entries"])  # type: ignore[index]


def fill(proxy: RunningProxy, body: dict[str, Any], count: int) -> list[httpx.Response]:
    """``count`` misses, each waited on until the store holds its answer."""
    answers = []
    for stored in range(1, count + 1):
        answers.append(post(proxy, body))
        wait_for(lambda stored=stored: entries(proxy) >= stored, f"{stored} entries stored")  # type: ignore[misc]
    return answers


@pytest.fixture
def bucket3(upstream: tuple[FakeOllama, str]) -> Iterator[RunningProxy]:
    """The proxy started with ``[cache] bucket = 3`` in ``config.toml``."""
    path = Path(os.environ["OLLACACHE_CONFIG_DIR"]) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[cache]\nbucket = 3\n")
    with proxy_in_thread(upstream[1]) as running:
        yield running


def test_a_sampled_request_fills_its_bucket_then_is_served_at_random(bucket3: RunningProxy, fake: FakeOllama) -> None:
    filling = fill(bucket3, SAMPLED, 3)
    assert [a.headers["x-cache"] for a in filling] == ["MISS", "MISS", "MISS"]
    key = filling[0].headers["x-cache-key"]
    assert [a.headers["x-cache-key"] for a in filling] == [key, f"{key}~1", f"{key}~2"]
    recorded = {a.headers["x-cache-key"]: a.json()["message"]["content"] for a in filling}
    assert len(set(recorded.values())) == 3  # the fake samples: three distinct answers
    served = [post(bucket3, SAMPLED) for _ in range(40)]
    assert {a.headers["x-cache"] for a in served} == {"HIT"} and fake.total_calls("/api/chat") == 3
    assert all(a.json()["message"]["content"] == recorded[a.headers["x-cache-key"]] for a in served)
    assert {a.headers["x-cache-key"] for a in served} == set(recorded)  # every answer of the bucket comes up
    listed = {e["key"] for e in httpx.get(bucket3.url + "/-/entries", timeout=30).json()["entries"]}
    assert listed == set(recorded)  # each answer is an entry of its own


def test_deterministic_requests_and_embeddings_keep_one_answer(bucket3: RunningProxy, fake: FakeOllama) -> None:
    assert [post(bucket3, GREEDY).headers["x-cache"] for _ in range(3)] == ["MISS", "HIT", "HIT"]
    embed = {"model": "nomic-embed-text", "input": "hi"}
    assert [post(bucket3, embed, "/api/embed").headers["x-cache"] for _ in range(3)] == ["MISS", "HIT", "HIT"]
    assert fake.total_calls("/api/chat") == fake.total_calls("/api/embed") == 1


def test_deleting_the_key_deletes_its_whole_bucket(bucket3: RunningProxy, fake: FakeOllama) -> None:
    key = fill(bucket3, SAMPLED, 3)[0].headers["x-cache-key"]
    deleted = httpx.delete(f"{bucket3.url}/-/entries/{key}", headers=bucket3.auth, timeout=30)
    assert deleted.status_code == 200 and entries(bucket3) == 0
    again = post(bucket3, SAMPLED)
    assert again.headers["x-cache"] == "MISS" and again.headers["x-cache-key"] == key  # the bucket fills anew
    wait_for(lambda: entries(bucket3) == 1, "the new answer stored")
    one_slot = httpx.delete(f"{bucket3.url}/-/entries/{key}~1", headers=bucket3.auth, timeout=30)
    assert one_slot.status_code == 404 and entries(bucket3) == 1  # a slot's own key is only that slot


def test_a_bucket_set_live_grows_the_answers_already_stored(proxy: RunningProxy, fake: FakeOllama) -> None:
    first = post(proxy, SAMPLED)
    assert first.headers["x-cache"] == "MISS"
    wait_for(lambda: entries(proxy) == 1, "the answer stored")
    assert post(proxy, SAMPLED).headers["x-cache"] == "HIT"
    changed = httpx.put(proxy.url + "/-/settings", json={"cache.bucket": 2}, headers=proxy.auth, timeout=30)
    assert changed.json()["changes"]["cache.bucket"]["result"] == "applied"
    second = post(proxy, SAMPLED)
    assert second.headers["x-cache"] == "MISS" and second.headers["x-cache-key"] == first.headers["x-cache-key"] + "~1"
    wait_for(lambda: entries(proxy) == 2, "the second answer stored")
    assert {post(proxy, SAMPLED).headers["x-cache"] for _ in range(5)} == {"HIT"}
    assert fake.total_calls("/api/chat") == 2


def test_the_official_client_streams_from_a_bucket(bucket3: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=bucket3.url) as client:
        recorded = []
        for stored in range(1, 4):
            recorded.append(
                "".join(
                    part.message.content
                    for part in client.chat(
                        model="llama3.2", messages=[{"role": "user", "content": "hey"}], stream=True
                    )
                )
            )
            wait_for(lambda stored=stored: entries(bucket3) >= stored, "the answer stored")  # type: ignore[misc]
        served = {
            "".join(
                part.message.content
                for part in client.chat(model="llama3.2", messages=[{"role": "user", "content": "hey"}], stream=True)
            )
            for _ in range(20)
        }
    assert served <= set(recorded) and fake.total_calls("/api/chat") == 3
