"""The engine as assembled by serve: the address it reports, what it shows of its upstream, and how it serves
when its cache cannot open."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.config.parsing import redact
from core.config.settings import load
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread, proxy_process

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


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


def test_a_cache_size_of_zero_keeps_nothing_not_even_in_memory(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with proxy_in_thread(url, **{"cache.size_limit": "0"}) as running, running.client() as http:
        assert [http.post("/api/chat", json=CHAT).headers["x-cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert fake.total_calls("/api/chat") == 2
