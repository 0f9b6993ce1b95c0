"""Cache namespaces through the real proxy: ``X-Cache-Namespace`` partitions the cache, a request without it
keeps the key it always had, and a bad name is a 400 that names the header; read by the official clients too."""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest

from core.cache.request.controls import ControlsError, parse_namespace
from core.cache.request.keys import cache_key
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}
OPENAI_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def ask(
    proxy: RunningProxy, namespace: str | None = None, path: str = "/api/chat", body: dict[str, object] | None = None
) -> httpx.Response:
    headers = {"X-Cache-Namespace": namespace} if namespace is not None else {}
    with proxy.client() as http:
        return http.post(path, json=body or CHAT, headers=headers)


def test_the_same_request_in_two_namespaces_has_two_entries(proxy: RunningProxy, fake: FakeOllama) -> None:
    first, other = ask(proxy, "team-a"), ask(proxy, "team-b")
    assert [first.headers["x-cache"], other.headers["x-cache"]] == ["MISS", "MISS"]
    assert first.headers["x-cache-key"] != other.headers["x-cache-key"]
    again_a, again_b = ask(proxy, "team-a"), ask(proxy, "team-b")
    assert [again_a.headers["x-cache"], again_b.headers["x-cache"]] == ["HIT", "HIT"]
    assert again_a.headers["x-cache-key"] == first.headers["x-cache-key"]
    assert fake.total_calls("/api/chat") == 2 and proxy.stats()["store"]["entries"] == 2  # type: ignore[index]


def test_without_the_header_the_key_is_the_one_stored_before_namespaces(proxy: RunningProxy, fake: FakeOllama) -> None:
    plain = ask(proxy)
    assert plain.headers["x-cache"] == "MISS"
    # no namespace in the context: the key of earlier stores (the model's build is in every key)
    assert plain.headers["x-cache-key"] == cache_key("/api/chat", CHAT, {"digest": fake.digest_of("llama3.2") or ""})
    assert ask(proxy, "team-a").headers["x-cache"] == "MISS"  # a namespace never reads the default one
    assert ask(proxy).headers["x-cache"] == "HIT"
    assert fake.total_calls("/api/chat") == 2


def test_the_official_clients_send_a_namespace(proxy: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=proxy.url, headers={"X-Cache-Namespace": "eval.run_7"}) as client:
        first = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], options={"temperature": 0})
        second = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], options={"temperature": 0})
    assert second.message.content == first.message.content and fake.total_calls("/api/chat") == 1
    with openai.OpenAI(
        base_url=proxy.url + "/v1", api_key="x", max_retries=0, default_headers={"X-Cache-Namespace": "eval.run_7"}
    ) as compatible:
        raw = compatible.chat.completions.with_raw_response.create(
            model="llama3.2", messages=[{"role": "user", "content": "hi"}], temperature=0
        )
        assert raw.headers["x-cache"] == "MISS"
        assert (
            compatible.chat.completions.with_raw_response.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}], temperature=0
            ).headers["x-cache"]
            == "HIT"
        )
    assert ask(proxy, path="/v1/chat/completions", body=OPENAI_CHAT).headers["x-cache"] == "MISS"


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "slash/name", "ünï"])
def test_a_bad_namespace_is_a_400_that_names_the_header_and_calls_nobody(
    proxy: RunningProxy, fake: FakeOllama, name: str
) -> None:
    with proxy.client() as http:
        native = http.post("/api/chat", json=CHAT, headers={"X-Cache-Namespace": name.encode()})
        compatible = http.post("/v1/chat/completions", json=OPENAI_CHAT, headers={"X-Cache-Namespace": name.encode()})
    assert native.status_code == 400 and "bad X-Cache-Namespace header" in native.json()["error"]
    assert "1 to 64 characters" in native.json()["error"]
    assert compatible.status_code == 400 and "X-Cache-Namespace" in compatible.json()["error"]["message"]
    assert fake.total_calls("/api/chat") == fake.total_calls("/v1/chat/completions") == 0
    assert proxy.stats()["store"]["entries"] == 0  # type: ignore[index]


def test_parse_namespace_reads_names_and_refuses_the_rest() -> None:
    assert parse_namespace(None) is None
    assert parse_namespace(b"team-a") == "team-a"
    assert parse_namespace(b" A.b_9 ") == "A.b_9"
    assert parse_namespace(b"x" * 64) == "x" * 64
    for bad in (b"", b"  ", b"x" * 65, b"a b", b"a/b", b"a:b", "é".encode()):
        with pytest.raises(ControlsError) as refused:
            parse_namespace(bad)
        assert refused.value.header == "X-Cache-Namespace"
