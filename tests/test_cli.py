"""The `ollacache` command as a user runs it: real subprocesses, real signals."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from core.cache.storage.opening import open_store_or_fail
from core.config.settings import load
from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import ROOT, SERVING, RunningProxy, proxy_process
from tests.test_supervisor_process import free_port, wait_for

# These tests read or take Ollama's default address (127.0.0.1:11434) or the proxy's (11435).
pytestmark = pytest.mark.usefixtures("default_ports")

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}}


def ollacache(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_sigterm_lets_a_streaming_miss_finish_and_be_stored_then_exits_0(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(chunk_delay_ms=40, tokens=20)
    lines: list[str] = []
    with proxy_process(url) as proxy:

        def stream() -> None:
            with httpx.stream("POST", proxy.url + "/api/chat", json=CHAT, timeout=60) as answer:
                lines.extend(answer.iter_lines())

        client = threading.Thread(target=stream)
        client.start()
        assert fake.wait_for_calls(1, "/api/chat", timeout=60)
        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        assert proxy.process.wait(timeout=60) == 0
    assert json.loads(lines[-1])["done"] is True and len(lines) > 10
    fake.configure(chunk_delay_ms=0)
    with proxy_process(url) as again, httpx.Client(base_url=again.url) as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
    assert fake.total_calls("/api/chat") == 1


def test_sigint_also_exits_0(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1]) as proxy:
        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGINT)
        assert proxy.process.wait(timeout=60) == 0


def test_serve_reads_its_flags_from_the_environment(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OLLACACHE_UPSTREAM": upstream[1],
        "OLLACACHE_PORT": "0",
        "OLLACACHE_CACHE_DIR": str(tmp_path / "env-cache"),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "core", "serve"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        match = SERVING.search(process.stdout.readline())
        assert match and f"(upstream {upstream[1]})" in match.string
        health = httpx.get(match.group(1) + "/-/health").json()
        process.terminate()
        assert process.wait(timeout=60) == 0
    assert health["store"]["location"] == str(tmp_path / "env-cache")


def test_a_port_in_use_is_reported_with_a_non_zero_exit(upstream: tuple[FakeOllama, str]) -> None:
    port = upstream[1].rsplit(":", 1)[1]
    result = ollacache("serve", "--port", port, "--upstream", upstream[1])
    assert result.returncode != 0 and f"could not listen on 127.0.0.1:{port}" in result.stderr


def test_stats_summarises_a_running_proxy(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1]) as proxy, httpx.Client(base_url=proxy.url) as http:
        for _ in range(4):
            http.post("/api/chat", json=CHAT)
        result = ollacache("stats", "--url", proxy.url)
        raw = ollacache("stats", "--url", proxy.url, "--json")
    assert result.returncode == 0
    assert "requests  4 (hits 3, misses 1" in result.stdout and "hit rate  75.0 %" in result.stdout
    assert "llama3.2:latest" in result.stdout
    assert json.loads(raw.stdout)["totals"]["hits"] == 3


def test_stats_without_a_proxy_says_how_to_start_one() -> None:
    result = ollacache("stats", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "ollacache serve" in result.stderr


def test_clear_through_the_proxy_and_directly(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    with proxy_process(upstream[1]) as proxy, httpx.Client(base_url=proxy.url) as http:
        for model in ("llama3.2", "qwen3:0.6b", "qwen3:0.6b"):
            http.post("/api/chat", json={**CHAT, "model": model, "messages": [{"role": "user", "content": model}]})
        http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"})
        cleared = ollacache("clear", "--model", "qwen3:0.6b", "--url", proxy.url)
        assert cleared.returncode == 0 and cleared.stdout.strip() == "removed 2 entries of qwen3:0.6b"
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "MISS"
    wrong_address = ollacache("clear", "--url", "http://127.0.0.1:9")
    assert wrong_address.returncode == 1 and "no proxy answers at http://127.0.0.1:9" in wrong_address.stderr
    not_ollacache = ollacache("clear", "--url", upstream[1])
    assert not_ollacache.returncode == 1 and "is " in not_ollacache.stderr and "Traceback" not in not_ollacache.stderr
    assert ollacache("clear", "--model", " ").returncode == 2
    offline = ollacache("clear", env={"OLLACACHE_PORT": "9"})
    assert offline.returncode == 0 and "no proxy running; removed 2 entries" in offline.stdout


def test_clear_older_than_an_age_through_the_proxy_and_directly(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1]) as proxy, httpx.Client(base_url=proxy.url) as http:
        for model in ("llama3.2", "qwen3:0.6b"):
            http.post("/api/chat", json={**CHAT, "model": model})
        young = ollacache("clear", "--older-than", "1h", "--url", proxy.url)
        assert (
            young.returncode == 0 and young.stdout.strip() == "nothing removed: no entries stored more than 1 hour ago"
        )
    store = open_store_or_fail(load())
    try:
        (old,) = store.entries("qwen3:0.6b")
        store.put(dataclasses.replace(old, created=time.time() - 8 * 86400))  # stored eight days ago
    finally:
        store.close()
    directly = ollacache("clear", "--older-than", "7d", env={"OLLACACHE_PORT": "9"})
    assert directly.returncode == 0 and directly.stdout.startswith(
        "no proxy running; removed 1 entry stored more than 7 days ago from "
    )
    with proxy_process(upstream[1]) as proxy, httpx.Client(base_url=proxy.url) as http:
        assert http.post("/api/chat", json={**CHAT, "model": "llama3.2"}).headers["x-cache"] == "HIT"
        assert http.post("/api/chat", json={**CHAT, "model": "qwen3:0.6b"}).headers["x-cache"] == "MISS"
    bad = ollacache("clear", "--older-than", "a while")
    assert bad.returncode == 2 and '"7d"' in bad.stderr
    assert ollacache("clear", "--older-than", "7d", "--stale").returncode == 2  # one way at a time


def test_hardware_prints_what_was_found_and_recommended() -> None:
    text = ollacache("hardware")
    raw = ollacache("hardware", "--json")
    assert text.returncode == raw.returncode == 0
    report = json.loads(raw.stdout)
    assert report["logical_cpus"] == os.cpu_count()
    assert {"physical_cores", "performance_cores", "efficiency_cores", "memory_bytes", "gpus"} <= set(report)
    recommended = report["recommended"]
    assert {"num_thread", "num_ctx", "keep_alive", "env"} <= set(recommended)
    assert recommended["env"]["LLAMA_ARG_THREADS"] == str(recommended["num_thread"])
    assert f"LLAMA_ARG_THREADS={recommended['num_thread']}" in text.stdout and "physical" in text.stdout


def test_hardware_on_a_recorded_hybrid_machine_counts_only_performance_cores() -> None:
    root = ROOT / "tests" / "data" / "hw"
    hybrid = next(p for p in root.iterdir() if p.is_dir() and "meteor" in p.name.lower())
    report = json.loads(ollacache("hardware", "--json", env={"OLLACACHE_HW_ROOT": str(hybrid)}).stdout)
    assert report["efficiency_cores"] > 0 and report["performance_cores"] < report["physical_cores"]
    assert report["recommended"]["num_thread"] == report["performance_cores"]


def test_a_users_override_is_in_force_beside_what_the_machine_alone_recommends() -> None:
    report = json.loads(ollacache("hardware", "--json", env={"OLLACACHE_NUM_CTX": "1024"}).stdout)
    assert report["recommended"]["num_ctx"] == 1024 and report["recommended"]["from_settings"] == ["num_ctx"]
    assert report["for_this_machine"]["num_ctx"] != 1024 and report["for_this_machine"]["from_settings"] == []
    assert report["for_this_machine"]["num_thread"] == report["recommended"]["num_thread"]


def test_a_thread_override_above_the_machines_cpus_is_refused(upstream: tuple[FakeOllama, str]) -> None:
    too_many = str((os.cpu_count() or 1) + 1)
    for args in (["hardware"], ["serve", "--port", "0", "--upstream", upstream[1]]):
        result = ollacache(*args, env={"OLLACACHE_NUM_THREAD": too_many})
        assert result.returncode == 2 and "tuning.num_thread" in result.stderr and too_many in result.stderr


def test_the_control_api_serves_the_same_hardware_json(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1]) as proxy:
        served = httpx.get(proxy.url + "/-/hardware").json()
    assert served == json.loads(ollacache("hardware", "--json").stdout)


def test_doctor_checks_everything_and_says_what_to_fix(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    with proxy_process(upstream[1]) as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        healthy = ollacache("doctor", env={"OLLACACHE_PORT": port, "OLLAMA_HOST": proxy.url})
        bypassed = ollacache(
            "doctor", env={"OLLACACHE_PORT": port, "OLLAMA_HOST": upstream[1], "OLLACACHE_INJECT_OPTIONS": "1"}
        )
    assert healthy.returncode == 0, healthy.stdout
    assert (
        "[ok  ] proxy" in healthy.stdout
        and f"[ok  ] upstream: Ollama 0.12.0 answers at {upstream[1]}" in healthy.stdout
    )
    assert "[warn] clients" in bypassed.stdout and f"OLLAMA_HOST={proxy.url}" in bypassed.stdout
    assert "[warn] tuning" in bypassed.stdout and "reload" in bypassed.stdout
    elsewhere = ollacache(
        "doctor",
        env={
            "OLLACACHE_UPSTREAM": upstream[1],
            "OLLACACHE_MANAGE_OLLAMA": "auto",
            "OLLACACHE_OLLAMA_BINARY": str(tmp_path / "none"),
        },
    )
    assert "[warn] ollama binary" in elsewhere.stdout  # Ollama answers, so a missing local binary is no failure
    (tmp_path / "file").write_text("")
    broken = ollacache(
        "doctor",
        env={
            "OLLACACHE_UPSTREAM": "http://127.0.0.1:9",
            "OLLACACHE_PORT": "9",
            "OLLACACHE_CACHE_DIR": str(tmp_path / "file" / "cache"),
        },
    )
    assert broken.returncode == 1
    assert "[FAIL] upstream: nothing answers at http://127.0.0.1:9" in broken.stdout
    assert "[FAIL] cache directory" in broken.stdout and "fix:" in broken.stdout


def test_doctor_names_a_server_that_is_not_ollama_instead_of_saying_nothing_answers() -> None:
    with serve_in_thread(FakeOllama(version=None, tags_enabled=False)) as (_fake, url):
        found = ollacache("doctor", env={"OLLACACHE_UPSTREAM": url, "OLLACACHE_MANAGE_OLLAMA": "auto"})
    assert f"[ok  ] upstream: a server that is not Ollama answers at {url} (HTTP 404" in found.stdout
    assert "nothing answers" not in found.stdout


def test_stats_into_a_closed_pipe_ends_quietly(proxy: RunningProxy) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # as `ollacache stats | head` once head has exited: every write fails with EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "core", "stats"],
            cwd=ROOT,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writer)
    assert result.stderr == "" and result.returncode == 1


def test_clearing_a_model_with_no_entries_says_so_plainly(proxy: RunningProxy) -> None:
    with httpx.Client(base_url=proxy.url) as http:
        http.post("/api/chat", json=CHAT)
    wait_for(lambda: httpx.get(proxy.url + "/-/entries").json()["entries"], "the answer to be stored")
    nothing = ollacache("clear", "--model", "nosuch")  # the engine is found through running.json
    one = ollacache("clear", "--model", "llama3.2")
    again = ollacache("clear")
    assert nothing.returncode == one.returncode == again.returncode == 0
    assert nothing.stdout.strip() == "nothing removed: the cache holds no entries of nosuch:latest"
    assert one.stdout.strip() == "removed 1 entry of llama3.2:latest"
    assert again.stdout.strip() == "nothing removed: the cache was already empty"


def test_clearing_the_directory_directly_reads_well(tmp_path: Path) -> None:
    offline = ollacache("clear", "--model", "nosuch", env={"OLLACACHE_PORT": str(free_port())})
    assert offline.returncode == 0
    assert (
        offline.stdout.strip() == f"no proxy running; nothing removed: {tmp_path / 'cache'} holds no entries of "
        "nosuch:latest"
    )


def test_doctor_checks_the_upstream_of_the_running_proxy(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    # the configured upstream is the default 127.0.0.1:11434; the running proxy forwards to the fake one
    result = ollacache(
        "doctor", env={"OLLACACHE_MANAGE_OLLAMA": "auto", "OLLACACHE_OLLAMA_BINARY": str(tmp_path / "no-ollama")}
    )
    assert result.returncode == 0, result.stdout
    assert f"[ok  ] proxy: Ollacache answers at {proxy.url}" in result.stdout
    assert f"[ok  ] upstream: Ollama 0.12.0 answers at {upstream[1]}" in result.stdout
    assert "[warn] ollama binary" in result.stdout  # Ollama answers behind the proxy: a missing binary is no failure
    assert "[ok  ] network: the proxy listens only on this machine" in result.stdout


def test_doctor_warns_when_the_proxy_would_listen_on_the_network() -> None:
    result = ollacache("doctor", env={"OLLACACHE_HOST": "0.0.0.0", "OLLACACHE_PORT": str(free_port())})
    assert "[warn] network: proxy.host is 0.0.0.0, so other machines can use the proxy" in result.stdout
    assert "/-/entries" in result.stdout and "fix: set proxy.host = 127.0.0.1" in result.stdout
