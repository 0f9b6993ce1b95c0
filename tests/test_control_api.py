"""The control API under /-/: what the dashboard and the CLI read and do."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from unittest import mock

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.cache.entry import Entry
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, events_named, proxy_in_thread, wait_for

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "options": {"temperature": 0},
    "stream": False,
}


def one_miss_two_hits(proxy: RunningProxy, body: dict[str, object] = CHAT) -> str:
    """One miss and two hits; returns once the entry is on disk (the store writes in the background)."""
    with proxy.client() as http:
        keys = {http.post("/api/chat", json=body).headers["x-cache-key"] for _ in range(3)}
    (key,) = keys
    wait_for(lambda: proxy.stats()["store"]["entries"] >= 1, "the entry to be written")  # type: ignore[index]
    return key


def test_health_reports_the_proxy_store_and_upstream(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    health = httpx.get(proxy.url + "/-/health").json()
    assert health["status"] == "ok"
    assert health["upstream"] == {"url": upstream[1], "reachable": True, "version": "0.12.0", "error": None}
    assert health["store"]["ok"] is True and health["store"]["location"].endswith("cache")
    assert health["pid"] > 0 and health["uptime_s"] >= 0


def test_stats_count_hits_misses_and_what_was_saved(proxy: RunningProxy, fake: FakeOllama) -> None:
    one_miss_two_hits(proxy)
    stats = proxy.stats()
    totals = stats["totals"]
    assert (totals["requests"], totals["hits"], totals["misses"]) == (3, 2, 1)
    assert totals["hit_rate"] == 2 / 3
    assert totals["tokens_saved"] > 0 and totals["time_saved_s"] > 0
    assert stats["by_model"]["llama3.2:latest"]["hits"] == 2 and stats["by_route"]["/api/chat"]["misses"] == 1
    assert stats["latency_ms"]["hit"]["count"] == 2 and stats["latency_ms"]["hit"]["p50"] > 0
    assert stats["store"]["entries"] == 1 and stats["store"]["bytes"] > 0
    resources = stats["resources"]
    assert resources["system"]["memory_total_bytes"] > 0 and resources["proxy"]["rss_bytes"] > 10 * 2**20


def test_events_push_stats_as_server_sent_events(proxy: RunningProxy) -> None:
    one_miss_two_hits(proxy)
    with httpx.stream("GET", proxy.url + "/-/events", timeout=30) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(lines) == "event: stats"
        data = next(lines)
    assert json.loads(data.removeprefix("data: "))["totals"]["hits"] == 2


def test_metrics_are_prometheus_text(proxy: RunningProxy) -> None:
    one_miss_two_hits(proxy)
    text = httpx.get(proxy.url + "/-/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("ollacache_requests_total", (("outcome", "hit"),))] == 2
    assert samples[("ollacache_entries", ())] == 1


def test_entries_list_metadata_and_filter_by_model(proxy: RunningProxy) -> None:
    key = one_miss_two_hits(proxy)
    one_miss_two_hits(proxy, {**CHAT, "model": "qwen3:0.6b"})
    listing = httpx.get(proxy.url + "/-/entries", params={"model": "llama3.2"}).json()["entries"]
    assert [e["key"] for e in listing] == [key]
    entry = listing[0]
    assert entry["model"] == "llama3.2:latest" and entry["route"] == "/api/chat" and entry["hits"] == 2
    assert entry["size"] > 0 and entry["completion_tokens"] > 0 and "chunks" not in entry
    assert len(httpx.get(proxy.url + "/-/entries").json()["entries"]) == 2
    assert httpx.get(proxy.url + "/-/entries", params={"limit": "0"}).status_code == 400


def test_deleting_an_entry_needs_the_token_and_makes_the_next_call_a_miss(proxy: RunningProxy) -> None:
    key = one_miss_two_hits(proxy)
    assert httpx.delete(f"{proxy.url}/-/entries/{key}").status_code == 401
    assert httpx.delete(f"{proxy.url}/-/entries/{key}", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.delete(f"{proxy.url}/-/entries/{key}", headers=proxy.auth).json() == {"deleted": key}
    assert httpx.delete(f"{proxy.url}/-/entries/{key}", headers=proxy.auth).status_code == 404
    with proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"


def test_clear_by_model_then_everything(proxy: RunningProxy) -> None:
    one_miss_two_hits(proxy)
    one_miss_two_hits(proxy, {**CHAT, "model": "qwen3:0.6b"})
    assert httpx.post(proxy.url + "/-/clear").status_code == 401
    cleared = httpx.post(proxy.url + "/-/clear", json={"model": "Qwen3:0.6b"}, headers=proxy.auth).json()
    assert cleared == {"removed": 1, "model": "qwen3:0.6b"}
    with proxy.client() as http:
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "MISS"
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        assert http.post("/-/clear", headers=proxy.auth).json()["removed"] == 2
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        assert http.post("/-/clear", content=b"{oops", headers=proxy.auth).status_code == 400


def test_clear_older_than_an_age_keeps_the_newer_entries(proxy: RunningProxy) -> None:
    one_miss_two_hits(proxy)
    one_miss_two_hits(proxy, {**CHAT, "model": "qwen3:0.6b"})
    assert proxy.server is not None
    store = proxy.server.engine.store
    (old,) = store.entries("llama3.2:latest")
    store.put(dataclasses.replace(old, created=time.time() - 3 * 86400))  # stored three days ago
    with proxy.client() as http:
        cleared = http.post("/-/clear", json={"older_than": "2d"}, headers=proxy.auth).json()
        assert cleared == {"removed": 1, "model": None, "older_than_s": 2 * 86400}
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"  # gone from memory too
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "HIT"
        refused = http.post("/-/clear", json={"older_than": "soon"}, headers=proxy.auth)
        assert refused.status_code == 400 and '"7d"' in refused.json()["error"]
        unknown = http.post("/-/clear", json={"older": "7d"}, headers=proxy.auth)  # never a clear of everything
        assert unknown.status_code == 400 and "older_than" in unknown.json()["error"]
        huge = http.post("/-/clear", json={"older_than": "9" * 400 + "d"}, headers=proxy.auth)
        assert huge.status_code == 400
        both = http.post("/-/clear", json={"older_than": 60, "stale": True}, headers=proxy.auth)
        assert both.status_code == 400 and "together" in both.json()["error"]
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "HIT"  # kept


def test_unknown_control_calls_get_a_json_404(proxy: RunningProxy) -> None:
    answer = httpx.get(proxy.url + "/-/nothing-here")
    assert answer.status_code == 404 and "no control endpoint" in answer.json()["error"]
    assert httpx.get(proxy.url + "/-/clear").status_code == 405


def test_totals_and_entries_survive_a_restart(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_in_thread(upstream[1]) as first:
        one_miss_two_hits(first)
    with proxy_in_thread(upstream[1]) as second:
        with second.client() as http:
            assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        totals = second.stats()["totals"]
    assert (totals["hits"], totals["misses"]) == (3, 1)
    assert upstream[0].total_calls("/api/chat") == 1


def test_events_also_name_what_happened(proxy: RunningProxy) -> None:
    def one_miss() -> None:
        with proxy.client() as http:
            http.post("/api/chat", json=CHAT)

    seen = events_named(proxy.url, 1, one_miss)  # subscribed first: what happens from now on is pushed
    assert seen[0][0] == "entry_did_store"
    assert seen[0][1]["model"] == "llama3.2:latest" and seen[0][1]["route"] == "/api/chat"


def _stats_events(url: str, count: int) -> list[dict[str, object]]:
    snapshots: list[dict[str, object]] = []
    with httpx.stream("GET", url + "/-/events", timeout=30) as events:
        name = ""
        for line in events.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "stats":
                snapshots.append(json.loads(line.removeprefix("data: ")))
                if len(snapshots) == count:
                    return snapshots
    raise AssertionError("the event stream ended early")


def test_every_subscriber_gets_the_same_snapshot_each_second(proxy: RunningProxy) -> None:
    """One snapshot (and one resource sample) a second serves every dashboard, however many are open."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        feeds = list(pool.map(lambda _: _stats_events(proxy.url, 4), range(3)))
    # past each subscriber's own first snapshot, the pushed ones are shared: the same uptime, CPU and memory
    shared = [{json.dumps(s, sort_keys=True) for s in feed[1:]} for feed in feeds]
    assert shared[0] & shared[1] & shared[2]


def test_off_loopback_even_reads_need_the_token(upstream: tuple[FakeOllama, str]) -> None:
    """Bound to 0.0.0.0, the proxy's cached answers' metadata would be open to the network."""
    with proxy_in_thread(upstream[1], **{"proxy.host": "0.0.0.0"}) as running:
        url = running.url.replace("0.0.0.0", "127.0.0.1")
        for path in ("/-/stats", "/-/entries", "/-/health", "/-/hardware", "/-/metrics", "/-/tune", "/-/events"):
            refused = httpx.get(url + path, timeout=30)
            assert refused.status_code == 401, path
            assert "token" in refused.json()["error"]
        assert httpx.get(url + "/-/stats", headers=running.auth, timeout=30).status_code == 200


def test_on_loopback_reads_are_open(proxy: RunningProxy) -> None:
    assert httpx.get(proxy.url + "/-/entries", timeout=30).status_code == 200


def test_a_clear_while_an_answer_is_being_written_is_not_undone(proxy: RunningProxy) -> None:
    assert proxy.server is not None
    store = proxy.server.engine.store
    writing, release = threading.Event(), threading.Event()
    real_put = store.put

    def slow_put(entry: Entry) -> None:
        writing.set()
        release.wait(30)
        real_put(entry)

    with mock.patch.object(store, "put", side_effect=slow_put), proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        assert writing.wait(30)
        cleared: list[httpx.Response] = []
        clearing = threading.Thread(target=lambda: cleared.append(http.post("/-/clear", headers=proxy.auth)))
        clearing.start()
        release.set()
        clearing.join(30)
        assert cleared[0].status_code == 200
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"


@pytest.mark.parametrize("model", ["", 0, False, [], "  "])
def test_clear_refuses_a_model_that_is_not_a_name(proxy: RunningProxy, model: object) -> None:
    with proxy.client() as http:
        http.post("/api/chat", json=CHAT)
        refused = http.post("/-/clear", json={"model": model}, headers=proxy.auth)
        assert refused.status_code == 400
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
