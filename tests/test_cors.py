"""Browser clients: CORS is answered by the proxy with Ollama's default origins, plus the setting."""

from __future__ import annotations

import httpx
import pytest

from core.http.cors import CorsRule
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "http://localhost:3000",
        "https://127.0.0.1:8443",
        "http://0.0.0.0:8080",
        "app://obsidian.md",
        "file://",
        "tauri://localhost",
        "vscode-webview://abc",
        "chrome-extension://abcdef",
        "moz-extension://x",
    ],
)
def test_ollamas_default_origins_are_allowed(origin: str) -> None:
    assert CorsRule().allows(origin)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost.evil.example", "http://192.168.1.5", "null", "http://127.0.0.2:80"],
)
def test_other_origins_are_not(origin: str) -> None:
    assert not CorsRule().allows(origin)


def test_the_setting_adds_origins_and_wildcards() -> None:
    rule = CorsRule(["https://app.example.com", "https://*.corp.example"])
    assert rule.allows("https://app.example.com") and rule.allows("https://wiki.corp.example")
    assert not rule.allows("https://corp.example.evil")
    assert CorsRule(["*"]).allows("https://anything.example")


def test_a_browser_gets_cors_headers_on_misses_hits_and_pass_through(proxy: RunningProxy) -> None:
    origin = {"Origin": "http://localhost:5173"}
    with proxy.client() as http:
        miss = http.post("/api/chat", json=CHAT, headers=origin)
        hit = http.post("/api/chat", json=CHAT, headers=origin)
        tags = http.get("/api/tags", headers=origin)
        stats = http.get("/-/stats", headers=origin)
    for answer in (miss, hit, tags, stats):
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert answer.headers.get_list("access-control-allow-origin") == ["http://localhost:5173"]
    assert "X-Cache" in hit.headers["access-control-expose-headers"]


def test_a_preflight_is_answered_without_reaching_ollama(proxy: RunningProxy, fake: FakeOllama) -> None:
    answer = httpx.options(
        proxy.url + "/api/chat",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status_code == 204
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "Content-Type" in answer.headers["access-control-allow-headers"]
    assert fake.total_calls("/api/chat") == 0


def test_a_foreign_origin_is_refused_like_ollama_does(proxy: RunningProxy, fake: FakeOllama) -> None:
    answer = httpx.post(proxy.url + "/api/chat", json=CHAT, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "cors_origins" in answer.json()["error"]
    assert fake.total_calls("/api/chat") == 0


def test_extra_origins_come_from_the_environment(
    upstream: tuple[FakeOllama, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLACACHE_ORIGINS", "https://notes.example.com")
    with proxy_in_thread(upstream[1]) as proxy:
        answer = httpx.post(proxy.url + "/api/chat", json=CHAT, headers={"Origin": "https://notes.example.com"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://notes.example.com"
