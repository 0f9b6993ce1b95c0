"""``X-Cache-Replay: paced``: a hit arrives at the pace its answer was recorded at, through the real proxy.

The fake Ollama pauses between the chunks it streams, so the recorded offsets are large; each chunk of
a paced replay must arrive no earlier than its recorded offset from the moment the request was sent
(less a small tolerance for clocks). Only lower bounds are asserted: a loaded machine may deliver later,
never earlier.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, wait_for

DELAY_MS = 200  # the fake's pause between streamed chunks, and per token before a whole answer
TOKENS = 4
TOLERANCE_S = 0.02
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}}
PACED = {"X-Cache-Replay": "paced"}


def timed_lines(
    http: httpx.Client, body: dict[str, Any], headers: dict[str, str]
) -> tuple[httpx.Response, list[tuple[float, str]]]:
    """The answer's lines, each with the seconds from sending the request to its arrival."""
    sent = time.perf_counter()
    with http.stream("POST", "/api/chat", json=body, headers=headers) as response:
        arrived = [(time.perf_counter() - sent, line) for line in response.iter_lines() if line]
    return response, arrived


@pytest.fixture
def slow(fake: FakeOllama) -> FakeOllama:
    fake.configure(chunk_delay_ms=DELAY_MS, tokens=TOKENS)
    return fake


def test_a_paced_hit_arrives_at_the_recorded_pace(proxy: RunningProxy, slow: FakeOllama) -> None:
    with proxy.client() as http:
        missed, recorded = timed_lines(http, {**CHAT, "stream": True}, {})
        assert missed.headers["x-cache"] == "MISS" and len(recorded) == TOKENS + 1
        hit, paced = timed_lines(http, {**CHAT, "stream": True}, PACED)
    assert hit.headers["x-cache"] == "HIT" and slow.total_calls("/api/chat") == 1
    assert [line for _, line in paced] == [line for _, line in recorded]  # the same lines, in order
    for index, (at, _) in enumerate(paced):  # the fake paused DELAY_MS before each later line
        assert at >= index * DELAY_MS / 1000 - TOLERANCE_S, (index, at)
    assert [at for at, _ in paced] == sorted(at for at, _ in paced)


def test_instant_is_the_default_and_may_be_asked_for(proxy: RunningProxy, slow: FakeOllama) -> None:
    with proxy.client() as http:
        recorded = http.post("/api/chat", json={**CHAT, "stream": True})
        for headers in ({}, {"X-Cache-Replay": "instant"}):
            hit = http.post("/api/chat", json={**CHAT, "stream": True}, headers=headers)
            assert hit.headers["x-cache"] == "HIT" and hit.content == recorded.content
    assert slow.total_calls("/api/chat") == 1


def test_a_stream_synthesised_from_a_whole_answer_is_spread_over_the_time_it_took(
    proxy: RunningProxy, slow: FakeOllama
) -> None:
    with proxy.client() as http:
        assert http.post("/api/chat", json={**CHAT, "stream": False}).headers["x-cache"] == "MISS"
        [entry] = wait_for(lambda: http.get("/-/entries").json()["entries"], "the entry to be written")
        hit, paced = timed_lines(http, {**CHAT, "stream": True}, PACED)
    assert hit.headers["x-cache"] == "HIT" and hit.headers["content-type"] == "application/x-ndjson"
    assert entry["duration_s"] >= TOKENS * DELAY_MS / 1000  # the fake took that long to answer
    assert [json.loads(line)["done"] for _, line in paced] == [False, True]
    (first, _), (last, _) = paced
    assert first >= entry["duration_s"] / 2 - TOLERANCE_S and last >= entry["duration_s"] - TOLERANCE_S


def test_a_whole_answer_merged_from_a_stream_comes_when_the_stream_had_ended(
    proxy: RunningProxy, slow: FakeOllama
) -> None:
    with proxy.client() as http:
        assert http.post("/api/chat", json={**CHAT, "stream": True}).headers["x-cache"] == "MISS"
        hit, [(at, line)] = timed_lines(http, {**CHAT, "stream": False}, PACED)
    assert hit.headers["x-cache"] == "HIT" and json.loads(line)["done"] is True
    assert at >= TOKENS * DELAY_MS / 1000 - TOLERANCE_S  # the last of TOKENS + 1 lines came that late


def test_a_client_that_leaves_a_paced_replay_leaves_the_proxy_serving(proxy: RunningProxy, slow: FakeOllama) -> None:
    with proxy.client() as http:
        http.post("/api/chat", json={**CHAT, "stream": True})
        with http.stream("POST", "/api/chat", json={**CHAT, "stream": True}, headers=PACED) as response:
            assert json.loads(next(response.iter_lines()))["done"] is False  # then it hangs up
        assert http.post("/api/chat", json={**CHAT, "stream": True}).headers["x-cache"] == "HIT"
    assert slow.total_calls("/api/chat") == 1
