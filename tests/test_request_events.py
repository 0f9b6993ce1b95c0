"""Every finished request on a cached route is told on /-/events (in batches), naming its client; savings add up
per client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import ollama
import openai

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, events_until, proxy_in_thread

PROMPT = "Which colour is the sky on a clear day?"
MESSAGES = [{"role": "user", "content": PROMPT}]
OPTIONS = {"temperature": 0, "seed": 7}
FIELDS = {"time", "client", "model", "route", "cache", "status", "latency_ms", "tokens", "saved_s", "id", "streamed"}


class Finished:
    """A subscription to ``/-/events`` that reads the finished requests of requests_did_finish batches, keeping
    their raw lines."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.raw: list[str] = []

    def take(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` finished requests (stats snapshots and other events are skipped)."""
        found: list[dict[str, Any]] = []
        name = "stats"
        for line in self.lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "requests_did_finish":
                self.raw.append(line)
                batch = json.loads(line.removeprefix("data: "))
                assert batch["count"] == len(batch["requests"])  # a batch this small carries them all
                found.extend(batch["requests"])
                if len(found) >= n:
                    return found
        raise AssertionError("the event stream ended early")


@contextmanager
def finished_requests(url: str) -> Iterator[Finished]:
    with httpx.stream("GET", url + "/-/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "event: stats"  # subscribed: what happens from now on is pushed
        yield Finished(lines)


def test_the_official_clients_are_named_on_each_finished_request(proxy: RunningProxy) -> None:
    with finished_requests(proxy.url) as events:
        with ollama.Client(host=proxy.url) as client:
            client.chat(model="llama3.2", messages=MESSAGES, options=OPTIONS)
            client.chat(model="llama3.2", messages=MESSAGES, options=OPTIONS)
        with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ollama", max_retries=0) as oa:
            oa.chat.completions.create(model="llama3.2", messages=MESSAGES, temperature=0)  # type: ignore[arg-type]
            oa.chat.completions.create(model="llama3.2", messages=MESSAGES, temperature=0)  # type: ignore[arg-type]
        miss, hit, oa_miss, oa_hit = events.take(4)
    assert all(set(event) == FIELDS for event in (miss, hit, oa_miss, oa_hit))
    assert (miss["client"], miss["cache"], miss["route"], miss["status"]) == ("ollama-python", "MISS", "/api/chat", 200)
    assert (hit["client"], hit["cache"], hit["route"], hit["status"]) == ("ollama-python", "HIT", "/api/chat", 200)
    assert miss["model"] == hit["model"] and "llama3.2" in miss["model"]
    assert miss["tokens"] > 0 and hit["tokens"] == miss["tokens"]
    assert miss["saved_s"] == 0.0 and hit["saved_s"] > 0.0
    assert miss["latency_ms"] > 0.0 and hit["latency_ms"] > 0.0
    assert (oa_miss["client"], oa_miss["cache"]) == ("openai-python", "MISS")
    assert (oa_hit["client"], oa_hit["cache"], oa_hit["route"]) == ("openai-python", "HIT", "/v1/chat/completions")
    assert miss["time"] <= hit["time"] <= oa_miss["time"] <= oa_hit["time"]
    assert not any(PROMPT in line or "sky" in line for line in events.raw)  # never the prompt


def test_a_bypass_and_an_unreachable_upstream_are_told_too(proxy: RunningProxy) -> None:
    with finished_requests(proxy.url) as events:
        with proxy.client() as http:
            http.post("/api/chat", content=b"not json", headers={"user-agent": "curl/8.5.0"})
        (bypass,) = events.take(1)
    assert (bypass["client"], bypass["cache"], bypass["route"], bypass["model"]) == (
        "curl",
        "BYPASS",
        "/api/chat",
        None,
    )
    assert bypass["tokens"] is None and bypass["saved_s"] == 0.0 and bypass["status"] >= 400

    with proxy_in_thread("http://127.0.0.1:9") as dead:  # nothing listens on the discard port
        with finished_requests(dead.url) as events:
            with dead.client() as http:
                answer = http.post(
                    "/api/chat",
                    json={"model": "llama3.2", "messages": MESSAGES},
                    headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"},
                )
            (failed,) = events.take(1)
    assert answer.status_code == 502
    assert (failed["client"], failed["cache"], failed["status"]) == ("browser", "MISS", 502)


def test_a_request_the_cache_refuses_is_told_and_a_failed_bypass_counts_once(proxy: RunningProxy) -> None:
    """Every request on a cached route is accounted once, at its end: a refusal too, and a bypass that found
    no upstream is one error, not a bypass and an error."""
    with finished_requests(proxy.url) as events:
        with proxy.client() as http:
            refused = http.post(
                "/api/chat",
                json={"model": "llama3.2", "messages": MESSAGES},
                headers={"cache-control": "only-if-cached"},
            )
        (told,) = events.take(1)
    assert refused.status_code == 504
    assert (told["cache"], told["status"], told["route"], told["tokens"]) == ("MISS", 504, "/api/chat", None)

    with proxy_in_thread("http://127.0.0.1:9") as dead:  # nothing listens on the discard port
        with dead.client() as http:
            answer = http.post(
                "/api/chat", json={"model": "llama3.2", "messages": MESSAGES}, headers={"cache-control": "no-store"}
            )
        totals: dict[str, Any] = dead.stats()["totals"]  # type: ignore[assignment]
    assert (answer.status_code, answer.headers["x-cache"]) == (502, "BYPASS")
    assert (totals["requests"], totals["errors"], totals.get("bypass", 0)) == (1, 1, 0)


def test_per_client_totals_after_traffic_from_two_clients(proxy: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=proxy.url) as client:
        for _ in range(3):
            client.chat(model="llama3.2", messages=MESSAGES, options=OPTIONS)
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ollama", max_retries=0) as oa:
        for _ in range(2):
            oa.chat.completions.create(model="llama3.2", messages=MESSAGES, temperature=0)  # type: ignore[arg-type]
    clients: dict[str, dict[str, Any]] = proxy.stats()["clients"]  # type: ignore[assignment]
    assert set(clients) == {"ollama-python", "openai-python"}
    ollama_python, openai_python = clients["ollama-python"], clients["openai-python"]
    assert (ollama_python["requests"], ollama_python["hits"], ollama_python["misses"]) == (3, 2, 1)
    assert (openai_python["requests"], openai_python["hits"], openai_python["misses"]) == (2, 1, 1)
    assert ollama_python["time_saved_s"] > 0 and ollama_python["tokens_saved"] > 0
    assert openai_python["tokens_saved"] > 0
    assert ollama_python["hit_rate"] == 2 / 3
    totals: dict[str, Any] = proxy.stats()["totals"]  # type: ignore[assignment]
    assert totals["tokens_saved"] == ollama_python["tokens_saved"] + openai_python["tokens_saved"]

    with httpx.Client(base_url=proxy.url) as http:
        metrics = http.get("/-/metrics").text
    assert 'ollacache_client_requests_total{client="openai-python",outcome="hit"} 1.0' in metrics


def test_finished_requests_come_in_batches_whose_counts_add_up(proxy: RunningProxy) -> None:
    """Hundreds of hits a second are a few events a second, and none is lost from the count."""
    from core.observe.events import BATCH_MAX

    def hits() -> None:
        with proxy.client() as http:
            for _ in range(300):
                assert http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES}).status_code == 200

    told = events_until(
        proxy.url,
        hits,
        lambda name: name == "requests_did_finish",
        lambda seen: sum(batch["count"] for _, batch in seen) >= 300,
    )
    batches = [batch for _, batch in told]
    assert sum(batch["count"] for batch in batches) == 300
    assert len(batches) < 300 // 2  # batched: far fewer events than requests
    assert all(len(batch["requests"]) == min(batch["count"], BATCH_MAX) for batch in batches)
    assert batches[-1]["requests"][-1]["cache"] == "HIT"  # the newest are the ones kept


def test_a_long_request_is_told_while_it_runs_and_its_finish_carries_the_same_id(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(chunk_delay_ms=100, tokens=10)  # a second of generation: several batches go by

    def generation() -> None:
        with proxy.client() as http:
            assert (
                http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": True}).status_code
                == 200
            )

    told = events_until(
        proxy.url,
        generation,
        lambda name: name.startswith("requests_did_"),
        lambda seen: seen[-1][0] == "requests_did_finish",
    )
    (start_name, started), (_, finished) = told
    assert start_name == "requests_did_start" and started["count"] == 1
    [running] = started["requests"]
    [done] = finished["requests"]
    assert running["id"] == done["id"] and running["streamed"] is True and done["streamed"] is True
    assert (running["route"], done["cache"], done["status"]) == ("/api/chat", "MISS", 200)
