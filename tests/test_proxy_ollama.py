"""The proxy with Ollama's own Python client: the second identical call is answered from the cache."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import ollama
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

DETERMINISTIC = {"temperature": 0, "seed": 7}
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture
def client(proxy: RunningProxy) -> Iterator[ollama.Client]:
    with ollama.Client(host=proxy.url) as client:
        yield client


def test_a_repeated_chat_is_answered_once_by_ollama(client: ollama.Client, fake: FakeOllama) -> None:
    first = client.chat(model="llama3.2", messages=MESSAGES, options=DETERMINISTIC)
    second = client.chat(model="llama3.2", messages=MESSAGES, options=DETERMINISTIC)
    assert second.message.content == first.message.content and first.message.content
    assert second.eval_count == first.eval_count
    assert fake.total_calls("/api/chat") == 1


def test_a_streamed_chat_replays_the_same_chunks(client: ollama.Client, fake: FakeOllama) -> None:
    first = list(client.chat(model="llama3.2", messages=MESSAGES, options=DETERMINISTIC, stream=True))
    second = list(client.chat(model="llama3.2", messages=MESSAGES, options=DETERMINISTIC, stream=True))
    assert [c.message.content for c in second] == [c.message.content for c in first]
    assert len(first) > 2 and second[-1].done and second[-1].done_reason == first[-1].done_reason
    assert fake.total_calls("/api/chat") == 1


def test_streamed_hits_replay_the_recorded_lines_byte_for_byte(proxy: RunningProxy, fake: FakeOllama) -> None:
    body = {"model": "llama3.2", "prompt": "Count to five", "options": DETERMINISTIC}
    with proxy.client() as client:
        answers = []
        for _ in range(2):
            with client.stream("POST", "/api/generate", json=body) as response:
                raw = b"".join(response.iter_raw())
                answers.append((response.headers["x-cache"], raw, raw.decode().splitlines()))
    (miss, miss_raw, miss_lines), (hit, hit_raw, hit_lines) = answers
    assert (miss, hit) == ("MISS", "HIT")
    assert hit_raw == miss_raw and len(hit_lines) > 2
    assert json.loads(hit_lines[-1])["done"] is True and "context" in json.loads(hit_lines[-1])
    assert fake.total_calls("/api/generate") == 1


def test_equivalent_requests_share_one_entry(client: ollama.Client, fake: FakeOllama) -> None:
    client.generate(model="llama3.2", prompt="hello", options={"temperature": 0}, stream=False)
    answer = client.generate(
        model="llama3.2:latest",
        prompt="hello",
        stream=False,
        keep_alive="10m",
        options={"temperature": 0.0, "num_thread": 3},
    )
    assert answer.response
    assert fake.total_calls("/api/generate") == 1


def test_a_different_option_is_a_different_answer(client: ollama.Client, fake: FakeOllama) -> None:
    client.generate(model="llama3.2", prompt="hello", options={"temperature": 0, "num_predict": 5}, stream=False)
    client.generate(model="llama3.2", prompt="hello", options={"temperature": 0, "num_predict": 6}, stream=False)
    assert fake.total_calls("/api/generate") == 2


def test_embeddings_are_cached_on_both_routes(client: ollama.Client, fake: FakeOllama) -> None:
    first = client.embed(model="nomic-embed-text", input=["alpha", "beta"])
    second = client.embed(model="nomic-embed-text", input=["alpha", "beta"])
    assert second.embeddings == first.embeddings and len(first.embeddings) == 2
    legacy = [client.embeddings(model="nomic-embed-text", prompt="alpha") for _ in range(2)]
    assert legacy[0].embedding == legacy[1].embedding
    assert fake.total_calls("/api/embed") == 1 and fake.total_calls("/api/embeddings") == 1


def test_hits_carry_cache_headers_and_age(proxy: RunningProxy) -> None:
    body = {"model": "llama3.2", "messages": MESSAGES, "stream": False, "options": DETERMINISTIC}
    with proxy.client() as client:
        miss = client.post("/api/chat", json=body)
        hit = client.post("/api/chat", json=body)
    assert miss.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-cache-key"] == miss.headers["x-cache-key"] and len(miss.headers["x-cache-key"]) == 64
    assert int(hit.headers["age"]) >= 0 and "age" not in miss.headers
    assert hit.json() == miss.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tags"),
        ("GET", "/api/version"),
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/api/ps"),
        ("GET", "/v1/models"),
    ],
)
def test_other_routes_pass_through_untouched(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], method: str, path: str
) -> None:
    direct = httpx.request(method, upstream[1] + path)
    through = httpx.request(method, proxy.url + path)
    assert through.status_code == direct.status_code == 200
    assert through.content == direct.content or path == "/api/ps"
    assert through.headers.get("content-type") == direct.headers.get("content-type")
    assert "x-cache" not in through.headers


def test_the_client_lists_models_and_pulls_through_the_proxy(client: ollama.Client, fake: FakeOllama) -> None:
    assert "llama3.2:latest" in [m.model for m in client.list().models]
    progress = list(client.pull("llama3.2", stream=True))
    assert progress[-1].status == "success" and len(progress) > 2
    assert fake.total_calls("/api/pull") == 1


def test_an_unknown_model_error_reaches_the_client_and_is_not_stored(client: ollama.Client, fake: FakeOllama) -> None:
    for _ in range(2):
        with pytest.raises(ollama.ResponseError) as caught:
            client.chat(model="no-such-model", messages=MESSAGES)
        assert caught.value.status_code == 404 and "not found" in caught.value.error
    assert fake.total_calls("/api/chat") == 2


def test_loading_a_model_with_an_empty_prompt_is_never_stored(proxy: RunningProxy, fake: FakeOllama) -> None:
    with proxy.client() as http:
        for _ in range(2):
            answer = http.post("/api/generate", json={"model": "llama3.2"})
            assert answer.json()["done_reason"] == "load" and answer.headers["x-cache"] == "MISS"
    assert fake.total_calls("/api/generate") == 2


def test_large_uploads_pass_through_streamed(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    blob = bytes(range(256)) * 32 * 1024  # 8 MiB, as `ollama create` uploads model layers to /api/blobs

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(blob), 1 << 20):
            yield blob[start : start + (1 << 20)]

    direct = httpx.post(upstream[1] + "/api/blobs/sha256:abc", content=chunks())
    through = httpx.post(proxy.url + "/api/blobs/sha256:abc", content=chunks())
    assert (through.status_code, through.content) == (direct.status_code, direct.content)
    assert upstream[0].total_calls("/api/blobs/sha256:abc") == 2


CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def raw_post(url: str, path: str, body: bytes, extra_headers: bytes) -> bytes:
    """A request with header bytes exactly as given (httpx refuses to send some that servers accept)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + extra_headers
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        return b"".join(iter(lambda: conn.recv(65536), b""))


def test_an_empty_bearer_token_is_forwarded_not_answered_502(proxy: RunningProxy) -> None:
    answer = raw_post(
        proxy.url, "/api/chat", httpx.Request("POST", "/", json=CHAT).content, b"Authorization: Bearer \r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_different_credentials_never_share_entries(proxy: RunningProxy, fake: FakeOllama) -> None:
    with proxy.client() as http:
        caches = [
            http.post("/api/chat", json=CHAT, headers=headers).headers["x-cache"]
            for headers in (
                {"Authorization": "Bearer alice"},
                {"Authorization": "Bearer mallory"},
                {},
                {"Authorization": "Bearer alice"},
            )
        ]
    assert caches == ["MISS", "MISS", "MISS", "HIT"]
    assert fake.total_calls("/api/chat") == 3


def test_paths_are_not_read_as_hosts(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    for path in ("//api/tags", "//other-host/api/tags"):
        with socket.create_connection(tuple(proxy.url.removeprefix("http://").split(":")), timeout=30) as conn:  # type: ignore[arg-type]
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        assert upstream[0].total_calls(path) == 1, answer[:100]
