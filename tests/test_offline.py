"""Offline replay (``serve --offline``): hits are served, every miss and every pass-through request is refused
with a 504 in the route's own format, and the upstream is never called, not even to supervise it."""

from __future__ import annotations

from pathlib import Path

import httpx

from core.cache.storage.diskstore import DiskStore
from tests.fakes.ollama_server import FakeOllama
from tests.harness import proxy_in_thread, proxy_process, wait_for

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}
OPENAI_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def record(upstream: str) -> tuple[dict[str, object], dict[str, object]]:
    """Fill the cache with one native and one OpenAI answer through an online proxy; the two answers."""
    with proxy_in_thread(upstream) as online, online.client() as http:
        native, compatible = http.post("/api/chat", json=CHAT), http.post("/v1/chat/completions", json=OPENAI_CHAT)
        assert native.headers["x-cache"] == compatible.headers["x-cache"] == "MISS"
        wait_for(lambda: online.stats()["store"]["entries"] == 2, "both entries stored")  # type: ignore[index]
        return native.json(), compatible.json()


def test_offline_serves_hits_and_refuses_misses_without_calling_the_upstream(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    native, compatible = record(url)
    fake.reset()
    with proxy_in_thread(url, **{"proxy.offline": "true"}) as offline, offline.client() as http:
        hit = http.post("/api/chat", json=CHAT)
        assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT" and hit.json() == native
        hit = http.post("/v1/chat/completions", json=OPENAI_CHAT)
        assert hit.headers["x-cache"] == "HIT" and hit.json() == compatible

        miss = http.post("/api/chat", json={**CHAT, "messages": [{"role": "user", "content": "new"}]})
        assert miss.status_code == 504 and miss.headers["x-cache"] == "MISS" and "x-cache-key" in miss.headers
        assert "offline" in miss.json()["error"] and "not cached" in miss.json()["error"]
        miss = http.post("/v1/chat/completions", json={**OPENAI_CHAT, "temperature": 1})
        assert miss.status_code == 504 and "offline" in miss.json()["error"]["message"]
        streamed = http.post("/api/generate", json={"model": "llama3.2", "prompt": "p"})
        assert streamed.status_code == 504 and "offline" in streamed.json()["error"]

        # what would otherwise go to the upstream untouched is refused the same way
        for method, path in (("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/v1/models"), ("GET", "/")):
            refused = http.request(method, path, json={"model": "llama3.2"} if method == "POST" else None)
            assert refused.status_code == 504 and "offline" in refused.json()["error"], path
        # a request the cache cannot key, no-store and no-cache would all be forwarded: refused too
        assert http.post("/api/chat", content=b"{not json").status_code == 504
        assert http.post("/api/chat", json=CHAT, headers={"Cache-Control": "no-store"}).status_code == 504
        assert http.post("/api/chat", json=CHAT, headers={"Cache-Control": "no-cache"}).status_code == 504

        health = http.get("/-/health").json()
        assert health["offline"] is True and health["status"] == "ok"
        assert health["upstream"]["reachable"] is None and "offline" in health["upstream"]["error"]
        assert http.get("/-/ollama/models").json() == {"models": []}
        restart = http.post("/-/ollama/restart", headers=offline.auth)
        assert restart.status_code == 409 and "offline" in restart.json()["error"]
        tune = http.post("/-/tune", json={}, headers=offline.auth)
        assert tune.status_code == 409 and "offline" in tune.json()["error"]
    assert fake.total_calls() == 0  # not a miss, not a pass-through, not a health check


def test_serve_offline_starts_no_ollama_and_says_it_is_offline(
    upstream: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    fake, url = upstream
    record(url)
    fake.reset()
    # even an ollama.manage of always starts nothing offline
    with proxy_process(url, "--offline", env={"OLLACACHE_MANAGE_OLLAMA": "always"}) as offline:
        assert "offline; upstream" in offline.output[0]
        assert httpx.post(offline.url + "/api/chat", json=CHAT, timeout=30).headers["x-cache"] == "HIT"
        health = httpx.get(offline.url + "/-/health", timeout=30).json()
        assert health["offline"] is True and health["ollama"]["pid"] is None
    assert fake.total_calls() == 0
    assert any("offline: cached answers are served" in line for line in offline.output)
    store = DiskStore(tmp_path / "cache", 10**8)
    assert store.count() == 2  # nothing was stored or removed offline
    store.close()
