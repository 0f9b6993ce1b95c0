"""The control client against a real engine: every call, each failure as one sentence, and the event stream."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest

from core.config.settings import load
from core.control import running
from core.control.client import AsyncControlClient, ControlClient, ControlError, upstream_of
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy
from tests.test_supervisor_process import free_port, wait_for

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def test_every_call_answers_with_what_the_engine_has(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    with httpx.Client(base_url=proxy.url) as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "MISS"
    with ControlClient(proxy.url, proxy.token) as client:
        health = client.health()
        assert health["status"] == "ok" and health["upstream"]["url"] == upstream[1]
        assert health["upstream"]["version"] == "0.12.0" and health["proxy"]["url"] == proxy.url
        assert client.stats()["totals"]["misses"] == 2
        assert "ollacache_requests_total" in client.metrics()
        entries = wait_for(lambda: len(found := client.entries()) == 2 and found, "both answers to be stored")
        assert {entry["model"] for entry in entries} == {"llama3.2:latest", "qwen3:0.6b"}
        assert [e["model"] for e in client.entries(model="qwen3:0.6b")] == ["qwen3:0.6b"]
        assert len(client.entries(limit=1)) == 1
        assert client.hardware()["recommended"]["num_thread"] >= 1
        assert client.tune_status() == {"state": "idle"}
        key = client.entries(model="qwen3:0.6b")[0]["key"]
        assert client.delete_entry(key) == {"deleted": key}
        assert client.clear("llama3.2") == {"removed": 1, "model": "llama3.2:latest"}
        assert client.entries() == [] and client.clear() == {"removed": 0, "model": None}


def test_a_refusal_names_the_engine_and_gives_its_reason(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        with pytest.raises(ControlError) as missing:
            client.delete_entry("no-such-key")
        with pytest.raises(ControlError) as unmanaged:
            client.restart_ollama()  # the tests run with ollama.manage = never
        with pytest.raises(ControlError) as zero:
            client.set_threads(0)
    assert missing.value.status == 404
    assert str(missing.value) == f"the engine at {proxy.url} refused: no entry with key no-such-key"
    assert unmanaged.value.status == 409 and "ollama.manage is never" in str(unmanaged.value)
    assert zero.value.status == 400 and "tuning.num_thread" in str(zero.value)


def test_a_background_tune_starts_and_reports_its_state(proxy: RunningProxy, fake: FakeOllama) -> None:
    fake.configure(speed_curve={"1": 7.0, "2": 3.0})
    with ControlClient(proxy.url, proxy.token) as client:
        assert client.tune_start(runs=1)["state"] == "running"
        done = wait_for(lambda: (status := client.tune_status())["state"] == "done" and status, "the measurement")
    assert done["result"]["best"]["num_thread"] == 1


def test_from_the_settings_it_finds_the_engine_and_the_token(proxy: RunningProxy) -> None:
    settings = load()
    assert running.read_url(settings.config_dir) == proxy.url and settings.url != proxy.url
    with ControlClient.from_settings(settings) as client:
        assert client.url == proxy.url and client.token == proxy.token
        assert client.clear() == {"removed": 0, "model": None}  # a call that needs the token
    with ControlClient.from_settings(settings, "http://127.0.0.1:9/") as given:
        assert given.url == "http://127.0.0.1:9"


def test_nothing_listening_says_where_and_to_start_the_engine() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ControlClient(url, None) as client, pytest.raises(ControlError) as failure:
        client.stats()
    assert str(failure.value) == f"no proxy answers at {url}; start one with `ollacache serve`"
    assert failure.value.status is None and failure.value.unreachable


def test_a_wrong_token_points_at_the_token_file(proxy: RunningProxy, tmp_path: Path) -> None:
    with ControlClient(proxy.url, "not-the-token", token_file=tmp_path / "config" / "token") as client:
        with pytest.raises(ControlError) as wrong:
            client.clear()
    with ControlClient(proxy.url, None) as anonymous, pytest.raises(ControlError) as none:
        anonymous.set_threads(2)
    assert wrong.value.status == none.value.status == 401
    assert str(wrong.value) == (
        f"the engine at {proxy.url} refused the control token: the token file in the "
        f"Ollacache config directory ({tmp_path / 'config' / 'token'}) is missing or wrong"
    )
    assert "missing or wrong" in str(none.value) and not none.value.unreachable


def test_a_server_that_is_not_ollacache_is_named_as_such(upstream: tuple[FakeOllama, str]) -> None:
    url = upstream[1]
    with ControlClient(url, None) as client:
        for call in (client.health, client.stats, client.metrics, client.clear):
            with pytest.raises(ControlError) as failure:
                call()
            assert str(failure.value).endswith(f"is {url} an Ollacache engine?"), str(failure.value)
            assert failure.value.status == 404 and not failure.value.unreachable


def test_a_malformed_address_is_one_sentence_too() -> None:
    with ControlClient("ftp://127.0.0.1:9", None) as client, pytest.raises(ControlError) as failure:
        client.health()
    assert str(failure.value) == (
        "ftp://127.0.0.1:9 is not the address of an engine; give one such as http://127.0.0.1:11435"
    )


def test_a_wildcard_listen_address_is_dialled_on_loopback() -> None:
    assert ControlClient("http://0.0.0.0:11435/", None).url == "http://127.0.0.1:11435"
    assert ControlClient("http://[::]:11435", None).url == "http://[::1]:11435"


def test_the_upstream_keeps_its_credentials_when_the_engine_hides_them() -> None:
    health = {"upstream": {"url": "http://***@ollama:11434"}, "proxy": {}}
    assert upstream_of(health, "http://me:secret@ollama:11434") == "http://me:secret@ollama:11434"  # type: ignore[arg-type]
    assert upstream_of(health, "http://127.0.0.1:11434") == "http://***@ollama:11434"  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_async_client_makes_the_same_calls(proxy: RunningProxy) -> None:
    async with AsyncControlClient(proxy.url, proxy.token) as client:
        assert (await client.health())["status"] == "ok"
        assert (await client.stats())["totals"]["requests"] == 0
        assert await client.entries() == [] and (await client.tune_status())["state"] == "idle"
        assert await client.clear("llama3.2") == {"removed": 0, "model": "llama3.2:latest"}
        with pytest.raises(ControlError) as refused:
            await client.delete_entry("no-such-key")
    assert refused.value.status == 404 and "refused: no entry with key no-such-key" in str(refused.value)


@pytest.mark.asyncio
async def test_the_event_stream_yields_stats_as_parsed_json(proxy: RunningProxy) -> None:
    async with AsyncControlClient(proxy.url, None) as client:
        async with contextlib.aclosing(client.events()) as events:
            stats = None
            async for name, data in events:
                if name == "stats":
                    stats = data
                    break
    assert stats is not None and stats["totals"]["requests"] == 0 and "by_model" in stats


@pytest.mark.asyncio
async def test_the_event_stream_fails_as_one_sentence(upstream: tuple[FakeOllama, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for url, said in ((upstream[1], f"is {upstream[1]} an Ollacache engine?"), (nowhere, "`ollacache serve`")):
        async with AsyncControlClient(url, None) as client:
            with pytest.raises(ControlError) as failure:
                async with contextlib.aclosing(client.events()) as events:
                    async for _ in events:
                        pass
        assert said in str(failure.value)
