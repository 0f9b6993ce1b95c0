"""Per-request controls through the real proxy: a client's Cache-Control header skips, refreshes, ages or
refuses the cache, and a bad value is a 400 that names the header; read by the official clients too."""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, wait_for

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}
OPENAI_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def ask(
    proxy: RunningProxy, control: str | None = None, path: str = "/api/chat", body: dict[str, object] | None = None
) -> httpx.Response:
    headers = {"Cache-Control": control} if control is not None else {}
    with proxy.client() as http:
        return http.post(path, json=body or CHAT, headers=headers)


def test_no_store_passes_through_and_keeps_nothing(proxy: RunningProxy, fake: FakeOllama) -> None:
    answers = [ask(proxy, "no-store") for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["BYPASS", "BYPASS"]
    assert fake.total_calls("/api/chat") == 2 and proxy.stats()["store"]["entries"] == 0  # type: ignore[index]


def test_no_cache_asks_again_and_its_answer_replaces_the_stored_one(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert ask(proxy).headers["x-cache"] == "MISS"
    fake.configure(tokens=3)  # the model answers differently now
    refreshed = ask(proxy, "no-cache")
    assert refreshed.headers["x-cache"] == "REFRESH" and fake.total_calls("/api/chat") == 2
    again = ask(proxy)
    assert again.headers["x-cache"] == "HIT" and again.json()["message"] == refreshed.json()["message"]
    assert proxy.stats()["store"]["entries"] == 1  # type: ignore[index]


def test_max_age_serves_only_entries_young_enough(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert ask(proxy, "max-age=3600").headers["x-cache"] == "HIT"
    assert ask(proxy, "max-age=0").headers["x-cache"] == "MISS"  # stored before now: too old
    assert fake.total_calls("/api/chat") == 2


def test_only_if_cached_answers_504_in_each_routes_format_and_never_calls_ollama(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    native = ask(proxy, "only-if-cached")
    assert native.status_code == 504 and native.headers["x-cache"] == "MISS"
    assert "only-if-cached" in native.json()["error"]
    compatible = ask(proxy, "only-if-cached", "/v1/chat/completions", OPENAI_CHAT)
    assert compatible.status_code == 504 and "only-if-cached" in compatible.json()["error"]["message"]
    assert fake.total_calls("/api/chat") == fake.total_calls("/v1/chat/completions") == 0
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert ask(proxy, "only-if-cached").headers["x-cache"] == "HIT"


def test_the_official_clients_send_the_controls_and_read_the_refusal(proxy: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=proxy.url, headers={"Cache-Control": "only-if-cached"}) as client:
        with pytest.raises(ollama.ResponseError) as refused:
            client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 504 and "only-if-cached" in refused.value.error
    with openai.OpenAI(
        base_url=proxy.url + "/v1", api_key="x", max_retries=0, default_headers={"Cache-Control": "only-if-cached"}
    ) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 504 and "only-if-cached" in failed.value.message
    assert fake.total_calls("/api/chat") == fake.total_calls("/v1/chat/completions") == 0


@pytest.mark.parametrize("control", ["max-age=soon", "no-store=please"])
def test_a_bad_value_is_a_400_that_names_the_header_and_loses_nothing(
    proxy: RunningProxy, fake: FakeOllama, control: str
) -> None:
    assert ask(proxy).headers["x-cache"] == "MISS"
    refused = ask(proxy, control)
    assert refused.status_code == 400 and "bad Cache-Control header" in refused.json()["error"]
    assert "no-cache, no-store, max-age=SECONDS" in refused.json()["error"]
    compatible = ask(proxy, control, "/v1/chat/completions", OPENAI_CHAT)
    assert compatible.status_code == 400 and "Cache-Control" in compatible.json()["error"]["message"]
    assert fake.total_calls("/api/chat") == 1 and ask(proxy).headers["x-cache"] == "HIT"


def test_x_cache_ttl_gives_the_stored_entry_its_own_lifetime(proxy: RunningProxy, fake: FakeOllama) -> None:
    with proxy.client() as http:
        assert http.post("/api/chat", json=CHAT, headers={"X-Cache-TTL": "90"}).headers["x-cache"] == "MISS"
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        [entry] = wait_for(lambda: http.get("/-/entries").json()["entries"], "the entry to be written")
    assert entry["expires"] - entry["created"] == pytest.approx(90, abs=0.01)  # not cache.ttl's 30 days


def test_an_entry_past_its_own_lifetime_is_not_served(proxy: RunningProxy, fake: FakeOllama) -> None:
    import time

    with proxy.client() as http:
        http.post("/api/chat", json=CHAT, headers={"X-Cache-TTL": "1"})
        [entry] = wait_for(lambda: http.get("/-/entries").json()["entries"], "the entry to be stored")
        wait_for(lambda: time.time() >= entry["expires"], "the entry's lifetime to pass")
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
    assert fake.total_calls("/api/chat") == 2


@pytest.mark.parametrize("ttl", ["0", "soon", "-5", "1.5"])
def test_a_bad_ttl_is_a_400_that_says_what_it_takes(proxy: RunningProxy, fake: FakeOllama, ttl: str) -> None:
    with proxy.client() as http:
        refused = http.post("/api/chat", json=CHAT, headers={"X-Cache-TTL": ttl})
    assert refused.status_code == 400 and "bad X-Cache-TTL header" in refused.json()["error"]
    assert "whole number of seconds" in refused.json()["error"] and fake.total_calls("/api/chat") == 0


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_a_bad_replay_pace_is_a_400_that_says_what_it_takes(proxy: RunningProxy, fake: FakeOllama, path: str) -> None:
    with proxy.client() as http:
        refused = http.post(
            path, json=CHAT if path == "/api/chat" else OPENAI_CHAT, headers={"X-Cache-Replay": "slowly"}
        )
    error = refused.json()["error"]
    message = error if path == "/api/chat" else error["message"]
    assert refused.status_code == 400 and "bad X-Cache-Replay header" in message
    assert "paced" in message and "instant" in message and fake.total_calls(path) == 0
