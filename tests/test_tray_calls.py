"""The control calls the tray app makes: pausing the cache, Ollama's loaded models and Unload, its log,
each through the HTTP API and through both control clients, against a real engine and the fake Ollama."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.control.client import AsyncControlClient, ControlClient, ControlError
from core.supervision.ollama_log import tail
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, events_named, proxy_in_thread
from tests.test_supervisor_process import free_port

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "options": {"temperature": 0},
    "stream": False,
}


def cache_headers(proxy: RunningProxy, count: int, body: dict[str, object] = CHAT) -> list[str]:
    with proxy.client() as http:
        return [http.post("/api/chat", json=body).headers["x-cache"] for _ in range(count)]


# --- pausing the cache -------------------------------------------------------------------------------------------


def test_while_paused_every_request_passes_through_and_nothing_is_stored(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert cache_headers(proxy, 2) == ["MISS", "HIT"]
    paused = httpx.post(proxy.url + "/-/pause", headers=proxy.auth)
    assert paused.status_code == 200 and paused.json() == {"paused": True, "changed": True}
    before = fake.total_calls("/api/chat")
    other = {**CHAT, "messages": [{"role": "user", "content": "never stored"}]}
    assert cache_headers(proxy, 2) == ["BYPASS", "BYPASS"]  # the stored answer is not used...
    assert cache_headers(proxy, 2, other) == ["BYPASS", "BYPASS"]  # ...and nothing new is stored
    assert fake.total_calls("/api/chat") == before + 4  # every one reached Ollama
    health = httpx.get(proxy.url + "/-/health").json()
    assert health["paused"] is True and health["status"] == "ok"  # the user's choice, not a fault
    stats = proxy.stats()
    assert stats["paused"] is True and stats["totals"]["bypass"] == 4  # type: ignore[index]
    assert httpx.post(proxy.url + "/-/pause", headers=proxy.auth).json() == {"paused": True, "changed": False}

    assert httpx.post(proxy.url + "/-/resume", headers=proxy.auth).json() == {"paused": False, "changed": True}
    assert cache_headers(proxy, 1) == ["HIT"]
    assert cache_headers(proxy, 1, other) == ["MISS"]  # it was never stored while paused
    assert httpx.get(proxy.url + "/-/health").json()["paused"] is False and proxy.stats()["paused"] is False


def test_pause_and_resume_need_the_token_and_are_published(proxy: RunningProxy) -> None:
    for path in ("/-/pause", "/-/resume"):
        refused = httpx.post(proxy.url + path)
        assert refused.status_code == 401 and "token" in refused.json()["error"]
    assert httpx.get(proxy.url + "/-/health").json()["paused"] is False  # nothing changed

    def toggle() -> None:
        for path in ("/-/pause", "/-/pause", "/-/resume"):  # the second pause changes nothing: no event
            httpx.post(proxy.url + path, headers=proxy.auth)

    assert events_named(proxy.url, 2, toggle) == [
        ("cache_did_pause", {"paused": True}),
        ("cache_did_resume", {"paused": False}),
    ]


def test_a_new_engine_caches_again(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_in_thread(upstream[1]) as first:
        httpx.post(first.url + "/-/pause", headers=first.auth)
        assert cache_headers(first, 1) == ["BYPASS"]
    with proxy_in_thread(upstream[1]) as second:
        assert httpx.get(second.url + "/-/health").json()["paused"] is False
        assert cache_headers(second, 2) == ["MISS", "HIT"]


# --- Ollama's loaded models and Unload ---------------------------------------------------------------------------


def test_loaded_models_are_listed_and_unload_empties_the_fakes_ps(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str]
) -> None:
    assert httpx.get(proxy.url + "/-/ollama/models").json() == {"models": []}
    cache_headers(proxy, 1)
    (model,) = httpx.get(proxy.url + "/-/ollama/models").json()["models"]
    assert model["name"] == "llama3.2:latest" and model["size"] > 0 and model["size_vram"] > 0
    assert model["digest"] and model["expires_at"]
    assert httpx.post(proxy.url + "/-/ollama/unload", json={"model": "llama3.2"}).status_code == 401
    unloaded = httpx.post(proxy.url + "/-/ollama/unload", json={"model": "llama3.2:latest"}, headers=proxy.auth)
    assert unloaded.status_code == 200 and unloaded.json() == {"unloaded": "llama3.2:latest"}
    assert httpx.get(upstream[1] + "/api/ps").json() == {"models": []}
    assert httpx.get(proxy.url + "/-/ollama/models").json() == {"models": []}


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 3}, ["llama3.2"]])
def test_unload_refuses_a_body_without_a_model_name(proxy: RunningProxy, body: object) -> None:
    refused = httpx.post(proxy.url + "/-/ollama/unload", json=body, headers=proxy.auth)
    assert refused.status_code == 400 and refused.json()["error"]


def test_unloading_an_unknown_model_is_a_404_with_ollamas_message(proxy: RunningProxy) -> None:
    refused = httpx.post(proxy.url + "/-/ollama/unload", json={"model": "mistral:7b"}, headers=proxy.auth)
    assert refused.status_code == 404
    assert refused.json() == {"error": "Ollama answered: model 'mistral:7b' not found"}


def test_with_no_ollama_the_models_call_says_it_cannot_reach_it() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with proxy_in_thread(nowhere) as proxy:
        failed = httpx.get(proxy.url + "/-/ollama/models", timeout=30)
        unload = httpx.post(proxy.url + "/-/ollama/unload", json={"model": "llama3.2"}, headers=proxy.auth, timeout=30)
    assert failed.status_code == 502 and "/api/ps" in failed.json()["error"]
    assert nowhere in failed.json()["error"] and "ConnectError" in failed.json()["error"]
    assert unload.status_code == 502 and "cannot ask Ollama" in unload.json()["error"]


# --- Ollama's log ------------------------------------------------------------------------------------------------


def test_the_log_call_gives_the_last_lines_and_a_missing_log_is_empty(proxy: RunningProxy) -> None:
    answer = httpx.get(proxy.url + "/-/ollama/log").json()
    path = Path(answer["path"])
    assert answer["lines"] == [] and path.name.endswith(".log")  # nothing started, so nothing written
    path.write_text("".join(f"line {n}\n" for n in range(1, 251)))
    assert httpx.get(proxy.url + "/-/ollama/log").json()["lines"] == [f"line {n}" for n in range(151, 251)]
    assert httpx.get(proxy.url + "/-/ollama/log?lines=3").json() == {
        "path": str(path),
        "lines": ["line 248", "line 249", "line 250"],
    }
    assert len(httpx.get(proxy.url + "/-/ollama/log?lines=10000").json()["lines"]) == 250
    for bad in ("0", "10001", "many", "-5"):
        refused = httpx.get(proxy.url + f"/-/ollama/log?lines={bad}")
        assert refused.status_code == 400 and refused.json() == {
            "error": "lines must be a whole number from 1 to 10000"
        }


def test_the_tail_reads_backwards_across_blocks_and_rotated_files(tmp_path: Path) -> None:
    log = tmp_path / "ollama.log"
    assert tail(log, 5) == []
    (tmp_path / "ollama.log.1").write_text("old 1\nold 2\nold 3\n")
    log.write_text("new 1\nnew 2\nnew \u00e9 3")  # the last line unfinished, a non-ASCII character
    assert tail(log, 2, block=4) == ["new 2", "new \u00e9 3"]
    assert tail(log, 5, block=4) == ["old 2", "old 3", "new 1", "new 2", "new \u00e9 3"]
    assert tail(log, 100) == ["old 1", "old 2", "old 3", "new 1", "new 2", "new \u00e9 3"]
    log.write_bytes(b"bad \xff byte\n")
    assert tail(log, 1) == ["bad \ufffd byte"]


# --- the control clients -----------------------------------------------------------------------------------------


def test_the_client_makes_every_tray_call(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        assert client.pause() == {"paused": True, "changed": True}
        assert client.health()["paused"] is True
        assert client.resume() == {"paused": False, "changed": True}
        cache_headers(proxy, 1)
        assert [model["name"] for model in client.ollama_models()] == ["llama3.2:latest"]
        assert client.unload("llama3.2") == {"unloaded": "llama3.2"}
        assert client.ollama_models() == []
        log = client.ollama_log(5)
        assert log["lines"] == [] and log["path"].endswith(".log")
        with pytest.raises(ControlError) as unknown:
            client.unload("mistral:7b")
        with pytest.raises(ControlError) as unmanaged:
            client.start_ollama()  # the tests run with ollama.manage = never
        with pytest.raises(ControlError) as not_ours:
            client.stop_ollama()
    assert unknown.value.status == 404 and "model 'mistral:7b' not found" in str(unknown.value)
    assert unmanaged.value.status == 409 and str(unmanaged.value) == (
        f"the engine at {proxy.url} refused: cannot start Ollama: ollama.manage is never: Ollacache does not "
        "start or stop Ollama"
    )
    assert not_ours.value.status == 409 and "cannot stop Ollama" in str(not_ours.value)


def test_the_client_without_the_token_is_refused_in_one_sentence(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, None) as client:
        with pytest.raises(ControlError) as refused:
            client.pause()
        assert client.ollama_log()["lines"] == []  # a read: open on loopback
    assert refused.value.status == 401 and "token" in str(refused.value)


@pytest.mark.asyncio
async def test_the_async_client_makes_the_same_tray_calls(proxy: RunningProxy) -> None:
    cache_headers(proxy, 1)
    async with AsyncControlClient(proxy.url, proxy.token) as client:
        assert await client.pause() == {"paused": True, "changed": True}
        assert (await client.stats())["paused"] is True
        assert await client.resume() == {"paused": False, "changed": True}
        assert [model["name"] for model in await client.ollama_models()] == ["llama3.2:latest"]
        assert await client.unload("llama3.2:latest") == {"unloaded": "llama3.2:latest"}
        assert await client.ollama_models() == []
        assert (await client.ollama_log(1))["lines"] == []
        with pytest.raises(ControlError) as unmanaged:
            await client.stop_ollama()
        with pytest.raises(ControlError):
            await client.start_ollama()
    assert unmanaged.value.status == 409 and "ollama.manage is never" in str(unmanaged.value)


def test_off_loopback_the_tray_reads_need_the_token_too(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_in_thread(upstream[1], **{"proxy.host": "0.0.0.0"}) as running:
        url = running.url.replace("0.0.0.0", "127.0.0.1")
        for path in ("/-/ollama/models", "/-/ollama/log"):
            assert httpx.get(url + path, timeout=30).status_code == 401, path
            assert httpx.get(url + path, headers=running.auth, timeout=30).status_code == 200, path


def test_while_paused_the_opted_in_thread_count_still_reaches_ollama(upstream: tuple[FakeOllama, str]) -> None:
    """Pausing must not change the options Ollama runs with: a different num_thread reloads the model."""
    fake, url = upstream
    with proxy_in_thread(url, **{"tuning.inject_options": "true", "tuning.num_thread": "1"}) as proxy:
        httpx.post(proxy.url + "/-/pause", headers=proxy.auth)
        assert cache_headers(proxy, 1) == ["BYPASS"]
        httpx.post(proxy.url + "/-/resume", headers=proxy.auth)
        assert cache_headers(proxy, 1) == ["MISS"]
    assert [body["options"].get("num_thread") for body in fake.received("/api/chat")] == [1, 1]
