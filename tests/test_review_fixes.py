"""Regressions found in review: each was a user-visible defect, reproduced here first."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from unittest import mock

import httpx
import pytest

from core.cache.diskstore import DiskStore
from core.cache.entry import Entry
from core.cache.hot import HotTier
from core.config.parsing import redact
from core.config.settings import load
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_process

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False,
        "options": {"temperature": 0}}


def raw_post(url: str, path: str, body: bytes, extra_headers: bytes) -> bytes:
    """A request with header bytes exactly as given (httpx refuses to send some that servers accept)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     + extra_headers + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                     + body)
        return b"".join(iter(lambda: conn.recv(65536), b""))


def test_an_empty_bearer_token_is_forwarded_not_answered_502(proxy: RunningProxy) -> None:
    answer = raw_post(proxy.url, "/api/chat", httpx.Request("POST", "/", json=CHAT).content, b"Authorization: Bearer \r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_different_credentials_never_share_entries(proxy: RunningProxy, fake: FakeOllama) -> None:
    with proxy.client() as http:
        caches = [http.post("/api/chat", json=CHAT, headers=headers).headers["x-cache"]
                  for headers in ({"Authorization": "Bearer alice"}, {"Authorization": "Bearer mallory"}, {},
                                  {"Authorization": "Bearer alice"})]
    assert caches == ["MISS", "MISS", "MISS", "HIT"]
    assert fake.total_calls("/api/chat") == 3


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


def test_stream_null_on_openai_routes_means_not_streamed(proxy: RunningProxy, fake: FakeOllama) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "stream": None}
    with proxy.client() as http:
        assert [http.post("/v1/chat/completions", json=body).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_paths_are_not_read_as_hosts(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    for path in ("//api/tags", "//other-host/api/tags"):
        with socket.create_connection(tuple(proxy.url.removeprefix("http://").split(":")), timeout=30) as conn:  # type: ignore[arg-type]
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        assert upstream[0].total_calls(path) == 1, answer[:100]


def test_health_reports_the_bound_address(proxy: RunningProxy) -> None:
    assert httpx.get(proxy.url + "/-/health").json()["proxy"]["url"] == proxy.url


def test_credentials_in_the_upstream_url_are_never_shown(tmp_path: Path) -> None:
    assert redact("http://alice:s3cret@host:11434") == "http://***@host:11434"
    assert redact("http://host:11434") == "http://host:11434"
    with proxy_process("http://alice:s3cret@127.0.0.1:9") as proxy:
        health = httpx.get(proxy.url + "/-/health").text
        failed = httpx.post(proxy.url + "/api/chat", json=CHAT).text
    assert "s3cret" not in health + failed + "".join(proxy.output)


def test_an_unusable_cache_dir_still_serves_as_a_pass_through(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with proxy_process(upstream[1], "--cache-dir", str(tmp_path / "a-file" / "cache")) as proxy:
        with httpx.Client(base_url=proxy.url) as http:
            answers = [http.post("/api/chat", json=CHAT) for _ in range(2)]
            health = http.get("/-/health").json()
    assert [a.status_code for a in answers] == [200, 200] and answers[1].headers["x-cache"] == "MISS"
    assert health["store"]["ok"] is False and "Not a directory" in health["store"]["error"]


def test_ipv6_listen_addresses_make_valid_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_HOST", "::1")
    assert load().url == "http://[::1]:11435"
    assert httpx.URL(load().url).port == 11435


def test_a_new_answer_too_big_for_memory_replaces_the_old_one(tmp_path: Path) -> None:
    hot = HotTier(max_bytes=4000)
    small = Entry("k", "/api/chat", "m", False, "application/json", [b"x" * 10])
    hot.put(small)
    hot.put(Entry("k", "/api/chat", "m", True, "application/x-ndjson", [b"y" * 3000]))
    assert hot.get("k", now=1.0) is None


def test_hit_counts_go_with_cleared_entries(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c", 10**8)
    entry = Entry("k", "/api/chat", "m:latest", False, "application/json", [b"{}"])
    store.put(entry)
    for when in (1.0, 2.0, 3.0):
        store.note_hit("k", when)
    store.flush()
    store.clear("m:latest")
    store.put(entry)
    assert store.recent()[0]["hits"] == 0
    store.close()
