"""Faults: nothing partial or failed is stored, clients get clear errors, hits survive a dead upstream."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from unittest import mock

import httpx
import ollama
import openai
import pytest

from core.http.upstream import CannotConnect
from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import RunningProxy, events_named, proxy_in_thread, wait_for

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}}


def test_a_stream_cut_by_the_upstream_ends_in_an_error_line_and_is_not_stored(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(drop_after_chunks=2)
    with ollama.Client(host=proxy.url) as client, pytest.raises(ollama.ResponseError) as caught:
        list(client.chat(**CHAT, stream=True))
    assert "closed the stream before it finished" in caught.value.error
    fake.configure(drop_after_chunks=None)
    with proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
    assert fake.total_calls("/api/chat") == 2


def test_a_cut_openai_stream_raises_in_the_openai_client(proxy: RunningProxy, fake: FakeOllama) -> None:
    fake.configure(drop_after_chunks=2)
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.APIError, match="closed the stream"):
            list(client.chat.completions.create(model="llama3.2", messages=CHAT["messages"], stream=True))
    assert proxy.stats()["store"]["entries"] == 0


def test_upstream_errors_pass_through_and_are_never_stored(proxy: RunningProxy, fake: FakeOllama) -> None:
    fake.configure(fail_status=500, fail_message="CUDA out of memory", fail_count=1)
    with proxy.client() as http:
        failed = http.post("/api/chat", json={**CHAT, "stream": False})
        assert failed.status_code == 500 and failed.json() == {"error": "CUDA out of memory"}
        assert http.post("/api/chat", json={**CHAT, "stream": False}).headers["x-cache"] == "MISS"
    assert fake.total_calls("/api/chat") == 2


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"messages": []}', b""])
def test_bad_requests_reach_ollama_and_its_answer_reaches_the_client(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], body: bytes
) -> None:
    direct = httpx.post(upstream[1] + "/api/chat", content=body)
    through = httpx.post(proxy.url + "/api/chat", content=body)
    assert through.status_code == direct.status_code and 400 <= through.status_code < 500
    assert through.json() == direct.json()
    assert through.headers["x-cache"] == "BYPASS"
    assert proxy.stats()["store"]["entries"] == 0


def test_an_unreachable_upstream_gives_502_naming_it_while_hits_are_still_served() -> None:
    with contextlib.ExitStack() as stack:
        fake_cm = serve_in_thread()
        fake, url = fake_cm.__enter__()
        proxy = stack.enter_context(proxy_in_thread(url))
        with proxy.client() as http:
            assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
            fake_cm.__exit__(None, None, None)
            hit = http.post("/api/chat", json=CHAT)
            assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
            miss = http.post("/api/chat", json={**CHAT, "messages": [{"role": "user", "content": "other"}]})
            assert miss.status_code == 502 and url in miss.json()["error"]
            tags = http.get("/api/tags")
            assert tags.status_code == 502 and url in tags.json()["error"]
            health = http.get("/-/health").json()
            assert health["upstream"]["reachable"] is False and health["status"] == "degraded"


def test_the_host_rule_refuses_rebinding_names(proxy: RunningProxy) -> None:
    with proxy.client() as http:
        refused = http.post("/api/chat", json=CHAT, headers={"Host": "attacker.example:11435"})
        assert refused.status_code == 403 and "Host" in refused.json()["error"]
        assert http.get("/api/version", headers={"Host": "localhost:11434"}).status_code == 200


def test_a_failing_store_degrades_to_a_pass_through_and_health_says_so(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert proxy.server is not None
    store = proxy.server.engine.store
    broken = sqlite3.OperationalError("database or disk is full")
    with mock.patch.object(store, "put", side_effect=broken), mock.patch.object(store, "get", side_effect=broken):
        with proxy.client() as http:
            for _ in range(2):
                answer = http.post("/api/chat", json={**CHAT, "options": {"temperature": 0, "seed": 1}})
                assert answer.status_code == 200 and answer.text.strip().endswith("}")
            # the first answer waits in the memory tier: drop it, so only the broken store remains
            proxy.server.engine.cache.forget()
            again = http.post("/api/chat", json={**CHAT, "options": {"temperature": 0, "seed": 1}})
            assert again.status_code == 200 and again.headers["x-cache"] == "MISS"
            health = http.get("/-/health").json()
    assert health["store"]["ok"] is False and "disk is full" in health["store"]["error"]
    assert health["status"] == "degraded"


def test_subscribers_hear_the_store_fail_and_recover(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert proxy.server is not None
    engine = proxy.server.engine

    def fill_the_disk_then_make_room() -> None:
        broken = sqlite3.OperationalError("database or disk is full")
        with mock.patch.object(engine.store, "put", side_effect=broken), httpx.Client(base_url=proxy.url) as http:
            http.post("/api/chat", json={**CHAT, "options": {"temperature": 0, "seed": 2}})
            wait_for(lambda: engine.cache.error is not None, "the failed write")
        with httpx.Client(base_url=proxy.url) as http:
            http.post("/api/chat", json={**CHAT, "options": {"temperature": 0, "seed": 3}})

    # each request: entry_did_store, and the store's news (the batches of finished requests aside)
    told = [
        (name, data)
        for name, data in events_named(proxy.url, 4, fill_the_disk_then_make_room)
        if name.startswith("store_")
    ]
    assert [name for name, _ in told] == ["store_did_fail", "store_did_recover"]
    assert told[0][1]["store"]["ok"] is False and "disk is full" in told[0][1]["store"]["error"]
    assert told[1][1]["store"] == {"ok": True, "error": None, "location": engine.store.location}


def test_a_client_leaving_mid_stream_cancels_the_upstream_and_stores_nothing(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(chunk_delay_ms=50, tokens=200)
    with httpx.Client(base_url=proxy.url) as http:
        with http.stream("POST", "/api/chat", json=CHAT) as response:
            first = next(response.iter_lines())
            assert first.startswith("{")
    assert fake.wait_for_abandoned(1, timeout=30), "the upstream went on generating for a client that left"
    fake.configure(chunk_delay_ms=0)
    with proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
    assert fake.total_calls("/api/chat") == 2


def test_a_stream_still_running_when_the_shutdown_grace_ends_closes_with_an_error_line(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    fake.configure(chunk_delay_ms=300, tokens=40)  # ~12 s: longer than the grace period below

    def short_grace(server: object) -> None:
        server.config.timeout_graceful_shutdown = 0.3  # type: ignore[attr-defined]

    with proxy_in_thread(url, configure=short_grace) as running:
        with httpx.stream("POST", running.url + "/api/chat", json={**CHAT, "stream": True}, timeout=60) as answer:
            lines = answer.iter_lines()
            assert '"done":false' in next(lines).replace(" ", "")
            running.server.stop_from_another_thread()  # type: ignore[union-attr]  # as SIGTERM does
            rest = [line for line in lines if line.strip()]
    assert "shutting down" in json.loads(rest[-1])["error"]
    assert all('"done": true' not in line and '"done":true' not in line for line in rest)


def test_an_unreachable_upstream_names_the_cause_even_when_the_error_has_no_message() -> None:
    with serve_in_thread() as (_, url), proxy_in_thread(url) as running:
        with mock.patch.object(
            running.server.engine.proxy.client,
            "send",  # type: ignore[union-attr]
            side_effect=CannotConnect(""),
        ):
            answer = httpx.post(running.url + "/api/chat", json=CHAT, timeout=30)
    assert answer.status_code == 502
    assert answer.json()["error"].endswith("CannotConnect")


def test_a_connection_refused_once_is_retried_before_it_becomes_a_502(proxy: RunningProxy, fake: FakeOllama) -> None:
    engine_client = proxy.server.engine.proxy.client  # type: ignore[union-attr]
    real_send = engine_client.send
    calls: list[str] = []

    async def refuse_once(request: httpx.Request, **kwargs: object) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise CannotConnect("All connection attempts failed")  # a full backlog, a stale connection
        return await real_send(request, **kwargs)

    with mock.patch.object(engine_client, "send", side_effect=refuse_once):
        answer = httpx.post(proxy.url + "/api/chat", json={**CHAT, "stream": False}, timeout=30)
    assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
    assert calls == ["/api/chat", "/api/chat"] and fake.total_calls("/api/chat") == 1
