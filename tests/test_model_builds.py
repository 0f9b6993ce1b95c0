"""Model builds in the key: a new build of a model (a pull, a create, a change made to Ollama directly) is never
answered from the old build's entries, which a clear of stale builds removes; an upstream without /api/tags
still caches by model name, and health says builds are not tracked there."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from core.cache.entry import MAGIC, Entry
from core.cache.request.builds import FILE, Builds
from core.cli.commands import main
from core.engine.server import _Server
from tests.fakes.fake_config import fresh_digest
from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import ROOT, RunningProxy, free_port, proxy_in_thread, proxy_process, wait_for

CHAT: dict[str, Any] = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def chat(proxy: RunningProxy, **changes: Any) -> httpx.Response:
    answer = httpx.post(f"{proxy.url}/api/chat", json={**CHAT, **changes}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def health_builds(proxy: RunningProxy) -> dict[str, Any]:
    return httpx.get(f"{proxy.url}/-/health", timeout=30).json()["builds"]


def entries(proxy: RunningProxy) -> list[dict[str, Any]]:
    return httpx.get(f"{proxy.url}/-/entries", timeout=30).json()["entries"]


def clear_stale(proxy: RunningProxy, **body: Any) -> httpx.Response:
    return httpx.post(f"{proxy.url}/-/clear", json={"stale": True, **body}, headers=proxy.auth, timeout=30)


def quick_refresh(server: _Server) -> None:
    server.engine.builds.interval_s = 0.05


def never_refresh(server: _Server) -> None:
    server.engine.builds.interval_s = 3600.0  # only the first read at start, and the ones requests cause


def test_a_pull_of_a_new_build_through_the_proxy_misses_then_hits_the_new_answer(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    assert [chat(proxy).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    old = fake.digest_of("llama3.2")
    assert entries(proxy)[0]["digest"] == old
    new = fresh_digest("a newer llama3.2")
    fake.configure(registry={"llama3.2": new})
    with ollama.Client(host=proxy.url) as client:
        lines = list(client.pull("llama3.2", stream=True))
    assert lines[-1].status == "success" and fake.digest_of("llama3.2") == new
    calls = fake.total_calls("/api/chat")
    assert [chat(proxy).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert fake.total_calls("/api/chat") == calls + 1
    assert {entry["digest"] for entry in entries(proxy)} == {old, new}


def test_create_copy_and_delete_through_the_proxy_take_effect_at_once(proxy: RunningProxy, fake: FakeOllama) -> None:
    with ollama.Client(host=proxy.url) as client:
        assert client.create("mine", from_="llama3.2", system="You are terse.", stream=False).status == "success"
        assert chat(proxy, model="mine").headers["x-cache"] == "MISS"
        assert chat(proxy, model="mine").headers["x-cache"] == "HIT"
        progress = [line.status for line in client.create("mine", from_="llama3.2", system="Verbose.", stream=True)]
        assert progress[-1] == "success"
        assert chat(proxy, model="mine").headers["x-cache"] == "MISS"  # the same name, a new build
        assert client.copy("qwen3:0.6b", "mine").status == "success"
        assert fake.digest_of("mine") == fake.digest_of("qwen3:0.6b")
        assert chat(proxy, model="mine").headers["x-cache"] == "MISS"
        assert client.delete("mine").status == "success"
        with pytest.raises(ollama.ResponseError) as missing:
            client.delete("mine")
        assert missing.value.status_code == 404
    assert fake.digest_of("mine") is None
    assert httpx.post(f"{proxy.url}/api/chat", json={**CHAT, "model": "mine"}, timeout=30).status_code == 404


def test_a_build_changed_in_ollama_directly_is_noticed(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with proxy_in_thread(url, configure=quick_refresh) as proxy:
        assert [chat(proxy).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
        new = fake.rebuild("llama3.2")
        wait_for(
            lambda: proxy.server is not None and proxy.server.engine.builds.digest("llama3.2:latest") == new,
            "the proxy to read the new build",
        )
        assert [chat(proxy).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_a_request_for_a_model_the_proxy_does_not_know_reads_the_model_list_first(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    with proxy_in_thread(url, configure=never_refresh) as proxy:
        wait_for(lambda: health_builds(proxy)["checked"], "the first read of the model list")
        reads = fake.total_calls("/api/tags")
        fake.install({"name": "newcomer:7b"})
        assert chat(proxy, model="newcomer:7b").headers["x-cache"] == "MISS"
        assert fake.total_calls("/api/tags") == reads + 1
        wait_for(lambda: entries(proxy), "the answer stored")  # written just after the answer is sent
        assert entries(proxy)[0]["digest"] == fake.digest_of("newcomer:7b")
        assert chat(proxy, model="newcomer:7b").headers["x-cache"] == "HIT"  # known now: no read
        assert chat(proxy).headers["x-cache"] == "MISS"
        assert fake.total_calls("/api/tags") == reads + 1
        # a model not installed at all is looked for once, not on every request
        for _ in range(3):
            assert httpx.post(f"{proxy.url}/api/chat", json={**CHAT, "model": "nosuch"}, timeout=30).status_code == 404
        assert fake.total_calls("/api/tags") == reads + 2


def test_without_api_tags_requests_hit_by_model_name_and_health_says_builds_are_not_tracked(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    fake.configure(tags_enabled=False)
    with proxy_in_thread(url) as proxy:
        assert [chat(proxy).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
        body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
        answers = [httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30) for _ in range(2)]
        assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "HIT"]
        builds = health_builds(proxy)
        assert builds["tracked"] is False and "cannot be tracked" in builds["reason"]
        assert entries(proxy)[0]["digest"] == ""
        refused = clear_stale(proxy)
        assert refused.status_code == 409 and "cannot be tracked" in refused.json()["error"]
        reads = fake.total_calls("/api/tags")
        assert chat(proxy, model="qwen3:0.6b").headers["x-cache"] == "MISS"  # no read for each new model
        assert fake.total_calls("/api/tags") == reads


def test_clear_stale_removes_only_the_entries_of_replaced_or_removed_builds(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    for model in ("llama3.2", "qwen3:0.6b"):
        chat(proxy, model=model)
    embedded = httpx.post(f"{proxy.url}/api/embed", json={"model": "nomic-embed-text", "input": "x"}, timeout=30)
    assert embedded.headers["x-cache"] == "MISS"
    chat(proxy, messages=[{"role": "user", "content": "another"}])
    assert clear_stale(proxy).json() == {"removed": 0, "model": None, "stale": True}
    fake.rebuild("llama3.2")
    fake.remove_model("nomic-embed-text")
    cleared = clear_stale(proxy)
    assert cleared.status_code == 200 and cleared.json()["removed"] == 3
    assert [entry["model"] for entry in entries(proxy)] == ["qwen3:0.6b"]
    assert chat(proxy, model="qwen3:0.6b").headers["x-cache"] == "HIT"
    assert clear_stale(proxy, model="qwen3:0.6b").json()["removed"] == 0
    assert clear_stale(proxy, stale="yes").status_code == 400


def test_ollacache_clear_stale_through_the_proxy_and_directly(
    upstream: tuple[FakeOllama, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = upstream
    monkeypatch.setenv("OLLACACHE_UPSTREAM", url)
    with proxy_in_thread(url) as proxy:
        chat(proxy)
        chat(proxy, model="qwen3:0.6b")
        fake.rebuild("llama3.2")
        capsys.readouterr()
        assert main(["clear", "--stale", "--url", proxy.url]) == 0
        assert capsys.readouterr().out.strip() == "removed 1 entry answered by a replaced or removed model build"
        chat(proxy)
    fake.rebuild("qwen3:0.6b")
    # no proxy runs now: the directory is cleared directly, with the model list read from the upstream
    assert main(["clear", "--stale", "--model", "llama3.2"]) == 0
    assert "nothing removed: no entries of llama3.2:latest" in capsys.readouterr().out
    assert main(["clear", "--stale"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("no proxy running; removed 1 entry answered by a replaced") and out.endswith("/cache")
    fake.configure(tags_enabled=False)
    assert main(["clear", "--stale"]) == 1
    assert "cannot be tracked" in capsys.readouterr().err
    assert main(["clear", "--stale", "--model", " "]) == 2


def test_entries_of_old_blobs_without_a_digest_still_decode() -> None:
    entry = Entry(
        key="k",
        route="/api/chat",
        model="llama3.2:latest",
        streamed=False,
        content_type="application/json",
        chunks=[b"{}"],
        digest="abc",
    )
    assert Entry.decode(entry.encode()).digest == "abc"
    header = {k: v for k, v in entry.info().items() if k != "digest"}
    header["lengths"], header["offsets_s"] = [2], []
    old = MAGIC + json.dumps(header).encode() + b"\n{}"
    assert Entry.decode(old).digest == "" and Entry.decode(old).chunks == [b"{}"]


def test_the_builds_are_kept_privately_and_an_offline_tracker_uses_them_without_asking(tmp_path: Path) -> None:
    async def online(url: str) -> dict[str, str]:
        builds = Builds(url, tmp_path)
        try:
            await builds.refresh()
            return dict(builds.digests)
        finally:
            await builds.stop()

    with serve_in_thread() as (fake, url):
        digests = asyncio.run(online(url))
        assert digests["llama3.2:latest"] == fake.digest_of("llama3.2")
        reads = fake.total_calls("/api/tags")
        kept = tmp_path / FILE
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        offline = Builds(url, tmp_path, offline=True)
        asyncio.run(offline.refresh())
        assert offline.digests == digests and not offline.unknown("another:latest")
        assert fake.total_calls("/api/tags") == reads
        assert offline.to_json()["offline"] is True


def test_concurrent_reads_of_the_model_list_are_shared(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(first_byte_delay_ms=0)

    async def many() -> int:
        builds = Builds(url, None)
        try:
            await asyncio.gather(*(builds.learn(f"model{index}:latest") for index in range(20)))
            return builds.reads
        finally:
            await builds.stop()

    reads = asyncio.run(many())
    assert reads <= 2 and fake.total_calls("/api/tags") == reads


def test_the_fake_changes_models_as_ollama_does(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with httpx.Client(base_url=url, timeout=30) as http:
        copied = http.post("/api/copy", json={"source": "nosuch", "destination": "other"})
        assert copied.status_code == 404 and copied.json() == {"error": 'model "nosuch" not found'}
        assert http.post("/api/copy", json={"source": "", "destination": "x"}).status_code == 400
        copied = http.post("/api/copy", json={"source": "llama3.2", "destination": "other"})
        assert copied.status_code == 200 and copied.content == b""
        deleted = http.request("DELETE", "/api/delete", json={"model": "other"})
        assert deleted.status_code == 200 and deleted.content == b"" and fake.digest_of("other") is None
        assert http.request("DELETE", "/api/delete", json={"model": "other"}).json() == {
            "error": "model 'other' not found"
        }
        assert http.request("DELETE", "/api/delete").json() == {"error": "missing request body"}
        created = http.post("/api/create", json={"model": "x", "from": "nosuch"})
        lines = [json.loads(line) for line in created.text.splitlines()]
        assert created.status_code == 200 and "error" in lines[-1] and fake.digest_of("x") is None
        whole = http.post("/api/create", json={"model": "x", "from": "llama3.2", "stream": False})
        assert whole.json() == {"status": "success"} and fake.digest_of("x") not in (None, fake.digest_of("llama3.2"))
        pulled = http.post("/api/pull", json={"model": "llama3.2", "stream": False})
        assert pulled.json() == {"status": "success"}  # no newer build in the registry: the same one
    with pytest.raises(ValueError):
        fake.configure(registry=["llama3.2"])


def test_a_request_sent_while_a_supervised_ollama_starts_is_keyed_with_the_build_it_then_has() -> None:
    upstream = f"http://127.0.0.1:{free_port()}"
    env = {
        "OLLACACHE_OLLAMA_BINARY": str(ROOT / "tests" / "fakes" / "bin" / "ollama"),
        "OLLACACHE_TEST_PYTHON": sys.executable,
        "FAKE_OLLAMA_START_DELAY_S": "1.5",
    }
    with proxy_process(upstream, "--manage-ollama", "auto", env=env) as proxy:
        assert httpx.get(f"{proxy.url}/-/health", timeout=30).json()["ollama"]["state"] == "starting"
        assert chat(proxy).headers["x-cache"] == "MISS"
        digest = httpx.get(f"{upstream}/api/tags", timeout=30).json()["models"]
        assert entries(proxy)[0]["digest"] == next(m["digest"] for m in digest if m["name"] == "llama3.2:latest")
        assert chat(proxy).headers["x-cache"] == "HIT"
