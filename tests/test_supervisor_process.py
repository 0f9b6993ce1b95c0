"""Ollama supervision with real processes: `ollacache serve` and the fake `ollama` executable."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core.engine.server import _Server
from core.supervision.machine import Policy
from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import ROOT, RunningProxy, free_port, proxy_in_thread, proxy_process, wait_for

FAKE_OLLAMA = str(ROOT / "tests" / "fakes" / "bin" / "ollama")
FAKE_PYTHON = {"OLLACACHE_TEST_PYTHON": sys.executable}  # the fake runs on our interpreter (a worktree has no .venv)
CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


@pytest.fixture(autouse=True)
def fake_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fake `ollama` started in this module, however, runs on the test's interpreter."""
    for name, value in FAKE_PYTHON.items():
        monkeypatch.setenv(name, value)


def ollama_state(proxy: RunningProxy) -> dict[str, Any]:
    return httpx.get(proxy.url + "/-/health", timeout=10).json()["ollama"]


def running(proxy: RunningProxy, not_pid: int | None = None) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        state = ollama_state(proxy)
        return state if state["state"] == "running" and state["pid"] != not_pid else None

    return check


def supervised(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    upstream = f"http://127.0.0.1:{free_port()}"
    return proxy_process(
        upstream,
        "--manage-ollama",
        "auto",
        *args,
        env={"OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA, **FAKE_PYTHON, **(env or {})},
    ), upstream


def test_auto_starts_ollama_with_the_tuned_environment_and_stops_it_on_exit(tmp_path: Path) -> None:
    context, upstream = supervised(env={"OLLACACHE_OLLAMA_ENV": "OLLAMA_DEBUG=1,OLLAMA_KEEP_ALIVE=2h"})
    with context as proxy:
        state = wait_for(running(proxy), "Ollama to run")
        started = httpx.get(upstream + "/_fake/env").json()
        hardware = httpx.get(proxy.url + "/-/hardware").json()["recommended"]
        assert started["pid"] == state["pid"] and state["version"] == "0.12.0"
        env = started["env"]
        assert env["OLLAMA_HOST"] == upstream.removeprefix("http://")
        assert env["LLAMA_ARG_THREADS"] == str(hardware["num_thread"])
        assert env["OLLAMA_CONTEXT_LENGTH"] == str(hardware["num_ctx"])
        assert env["LLAMA_ARG_CACHE_RAM"] == str(hardware["prompt_cache_ram"])  # the runners' prompt cache, in MiB
        assert env["OLLAMA_DEBUG"] == "1" and env["OLLAMA_KEEP_ALIVE"] == "2h"  # the user's overrides win
        with httpx.Client(base_url=proxy.url) as http:
            assert [http.post("/api/chat", json=CHAT).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
        resources = httpx.get(proxy.url + "/-/stats").json()["resources"]
        assert resources["ollama"]["pid"] == state["pid"] and resources["ollama"]["rss_bytes"] > 0
        log = Path(state["log"])
        assert "Listening on" in log.read_text()
        pid = state["pid"]
    assert proxy.process is not None and proxy.process.returncode == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_crashed_ollama_is_restarted_and_health_shows_its_last_words() -> None:
    context, upstream = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        httpx.post(upstream + "/_fake/crash")
        again = wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")
        assert again["restarts"] == 1 and "status 2" in again["last_exit"]
        assert any(line.startswith("panic:") for line in again["log_tail"])


def test_restart_on_request_needs_the_token() -> None:
    context, _ = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        assert httpx.post(proxy.url + "/-/ollama/restart").status_code == 401
        assert httpx.post(proxy.url + "/-/ollama/restart", headers=proxy.auth).status_code == 200
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")


def test_an_ollama_already_running_is_attached_and_left_running(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1], "--manage-ollama", "auto", env={"OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA}) as proxy:
        state = wait_for(lambda: (s := ollama_state(proxy))["state"] == "attached" and s, "attach")
        assert state["pid"] is None
        refused = httpx.post(proxy.url + "/-/ollama/restart", headers=proxy.auth)
        assert refused.status_code == 409 and refused.json()["error"]
    assert httpx.get(upstream[1] + "/api/version").status_code == 200


def test_an_openai_only_server_at_the_upstream_is_used_and_no_ollama_is_started_on_its_port() -> None:
    """llama.cpp's server, LM Studio or vLLM where Ollama would be (404 to /api/version and /api/tags), with Ollama
    installed: requests are forwarded to that server, no Ollama is started to fight it for its port, and the
    engine says what it found instead of warning that nothing answers."""
    openai = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    with (
        serve_in_thread(FakeOllama(version=None, tags_enabled=False)) as (_fake, url),
        proxy_process(url, "--manage-ollama", "auto", env={"OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA}) as proxy,
    ):
        state = wait_for(lambda: "not Ollama" in (s := ollama_state(proxy))["reason"] and s, "the server used as it is")
        assert (state["state"], state["pid"], state["version"], state["restarts"]) == ("attached", None, "", 0)
        with httpx.Client(base_url=proxy.url) as http:
            answers = [http.post("/v1/chat/completions", json=openai) for _ in range(2)]
        assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "HIT"]
        assert answers[1].json()["choices"][0]["message"]["content"]
        assert (ollama_state(proxy)["state"], ollama_state(proxy)["restarts"]) == ("attached", 0)
    assert not any("nothing answers" in line for line in proxy.output)


def test_no_binary_is_reported_with_the_install_hint_and_hits_are_still_served(
    upstream: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    with proxy_process(upstream[1]) as priming, httpx.Client(base_url=priming.url) as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
    nowhere = f"http://127.0.0.1:{free_port()}"
    with proxy_process(
        nowhere, "--manage-ollama", "auto", env={"OLLACACHE_OLLAMA_BINARY": str(tmp_path / "no-such-ollama")}
    ) as proxy:
        with httpx.Client(base_url=proxy.url) as http:
            assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        state = ollama_state(proxy)
    assert state["state"] == "not_installed" and state["reason"].startswith("Ollama is not installed")
    assert state["download"].startswith("https://ollama.com/download") and "Settings" in state["install_hint"]


def test_an_unwritable_log_directory_stops_serve_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "core", "serve", "--port", "0", "--log-dir", str(tmp_path / "file" / "logs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OLLACACHE_UPSTREAM": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2 and "log.dir" in result.stderr


def ports_free(*ports: int) -> bool:
    from core.engine.startup import port_free

    return all(port_free("127.0.0.1", port) for port in ports)


@pytest.mark.usefixtures("default_ports")
def test_port_takeover_puts_the_proxy_on_ollamas_own_port() -> None:
    import subprocess
    import sys

    if not ports_free(11434, 11444, 11435):
        pytest.skip("Ollama's ports are in use on this machine")
    env = {**os.environ, "OLLACACHE_MANAGE_OLLAMA": "auto", "OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA}
    with subprocess.Popen(
        [sys.executable, "-m", "core", "serve"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        try:
            assert "port takeover" in lines[0] and "serving on http://127.0.0.1:11434" in lines[1]
            state = wait_for(
                lambda: (
                    (s := httpx.get("http://127.0.0.1:11434/-/health").json())["ollama"]["state"] == "running" and s
                ),
                "Ollama to run on 11444",
            )
            assert state["upstream"]["url"] == "http://127.0.0.1:11444" and state["takeover"]["on"] is True
            assert (
                json.loads(httpx.get("http://127.0.0.1:11444/_fake/env").text)["env"]["OLLAMA_HOST"]
                == "127.0.0.1:11444"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0


def test_settings_applied_to_a_supervised_ollama_are_part_of_the_key(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1]) as attached, httpx.Client(base_url=attached.url) as http:
        attached_key = http.post("/api/chat", json=CHAT).headers["x-cache-key"]
    context, _ = supervised()
    with context as proxy, httpx.Client(base_url=proxy.url) as http:
        wait_for(running(proxy), "Ollama to run")
        supervised_key = http.post("/api/chat", json=CHAT).headers["x-cache-key"]
    assert supervised_key != attached_key


def test_the_users_own_ollama_env_is_in_the_key_where_it_changes_answers() -> None:
    keys = {}
    for name, env in (("tuned", ""), ("debug", "OLLAMA_DEBUG=1"), ("short context", "OLLAMA_CONTEXT_LENGTH=1024")):
        context, _ = supervised(env={"OLLACACHE_OLLAMA_ENV": env} if env else None)
        with context as proxy, httpx.Client(base_url=proxy.url) as http:
            wait_for(running(proxy), "Ollama to run")
            keys[name] = http.post("/api/chat", json=CHAT).headers["x-cache-key"]
    assert keys["debug"] == keys["tuned"] != keys["short context"]  # a log level changes no answer; a context does


def test_an_ollama_started_after_the_engine_puts_its_settings_and_builds_in_the_key(tmp_path: Path) -> None:
    """Ollama installed while Ollacache runs, then started with Detect again: answers from then on are keyed with
    the settings it was started with and the builds it has, as if it had been there from the start."""
    program = tmp_path / "bin" / "ollama"
    context, _ = supervised(env={"OLLACACHE_OLLAMA_BINARY": str(program)})
    with context as proxy, httpx.Client(base_url=proxy.url) as http:
        assert ollama_state(proxy)["state"] == "not_installed"
        before = http.post("/api/chat", json=CHAT).headers.get("x-cache-key")  # no Ollama: a 502, keyed all the same
        program.parent.mkdir()
        program.write_text(f'#!/bin/sh\nexec "{FAKE_OLLAMA}" "$@"\n')  # installed, as a program of its own
        program.chmod(0o755)
        assert http.post("/-/ollama/start", headers=proxy.auth).status_code == 200
        wait_for(running(proxy), "Ollama to run")
        after = http.post("/api/chat", json=CHAT).headers["x-cache-key"]
    from_the_start, _ = supervised()
    with from_the_start as proxy, httpx.Client(base_url=proxy.url) as http:
        wait_for(running(proxy), "Ollama to run")
        assert after == http.post("/api/chat", json=CHAT).headers["x-cache-key"] != before


QUICK = Policy(
    check_interval_s=0.2,
    startup_check_interval_s=0.1,
    health_timeout_s=0.5,
    hang_checks=2,
    hang_timeout_s=1.0,
    terminate_grace_s=1.0,
)


def quick_supervision(server: _Server) -> None:
    server.engine.supervisor.policy = QUICK  # the same machine, on a shorter clock


def test_a_hung_ollama_is_terminated_and_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_MANAGE_OLLAMA", "auto")
    monkeypatch.setenv("OLLACACHE_OLLAMA_BINARY", FAKE_OLLAMA)
    upstream = f"http://127.0.0.1:{free_port()}"
    with proxy_in_thread(upstream, configure=quick_supervision) as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        httpx.post(upstream + "/_fake/hang")
        again = wait_for(running(proxy, not_pid=first["pid"]), "the hung Ollama to be replaced")
    assert again["restarts"] == 1
    assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE


def test_an_ollama_ignoring_sigterm_is_killed_after_the_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_MANAGE_OLLAMA", "auto")
    monkeypatch.setenv("OLLACACHE_OLLAMA_BINARY", FAKE_OLLAMA)
    monkeypatch.setenv("FAKE_OLLAMA_IGNORE_TERM", "1")
    upstream = f"http://127.0.0.1:{free_port()}"
    with proxy_in_thread(upstream, configure=quick_supervision) as proxy:
        state = wait_for(running(proxy), "Ollama to run")
    assert not psutil.pid_exists(state["pid"]) or psutil.Process(state["pid"]).status() == psutil.STATUS_ZOMBIE
    assert "ignoring" in Path(state["log"]).read_text()  # it did get SIGTERM first, then SIGKILL


def test_five_quick_crashes_give_up_with_the_last_lines_of_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_MANAGE_OLLAMA", "auto")
    monkeypatch.setenv("OLLACACHE_OLLAMA_BINARY", FAKE_OLLAMA)
    monkeypatch.setenv("FAKE_OLLAMA_EXIT_AT_START", "3")

    def crash_quickly(server: _Server) -> None:
        server.engine.supervisor.policy = Policy(
            backoff_initial_s=0.05, backoff_max_s=0.2, startup_check_interval_s=0.1
        )

    with proxy_in_thread(f"http://127.0.0.1:{free_port()}", configure=crash_quickly) as proxy:
        state = wait_for(lambda: (s := ollama_state(proxy))["state"] == "failed" and s, "supervision to give up")
        assert httpx.post(proxy.url + "/-/ollama/restart").status_code == 401
        refused = httpx.post(proxy.url + "/api/chat", json=CHAT)
    assert refused.status_code == 502 and "Ollama is failed: crashed 5 times" in refused.json()["error"]
    assert state["restarts"] == 4 and "status 3" in state["last_exit"]
    assert state["reason"].startswith("crashed 5 times within 120 s, not restarting")
    assert any("FAKE_OLLAMA_EXIT_AT_START" in line for line in state["log_tail"])


def wall_now() -> datetime:
    """Now in UTC, to the second (as health shows moments)."""
    return datetime.now(UTC).replace(microsecond=0)


def test_health_shows_moments_as_wall_clock_times(monkeypatch: pytest.MonkeyPatch) -> None:
    before = wall_now()
    context, _ = supervised()
    with context as proxy:
        state = wait_for(running(proxy), "Ollama to run")
    started, healthy = datetime.fromisoformat(state["started_at"]), datetime.fromisoformat(state["healthy_since"])
    assert before <= started <= healthy <= wall_now() and started.utcoffset() == timedelta(0)
    assert state["unhealthy_since"] is None and state["crash_times"] == [] and state["uptime_s"] >= 0

    monkeypatch.setenv("OLLACACHE_MANAGE_OLLAMA", "auto")
    monkeypatch.setenv("OLLACACHE_OLLAMA_BINARY", FAKE_OLLAMA)
    monkeypatch.setenv("FAKE_OLLAMA_EXIT_AT_START", "3")

    def crash_quickly(server: _Server) -> None:
        server.engine.supervisor.policy = Policy(
            backoff_initial_s=0.05, backoff_max_s=0.2, startup_check_interval_s=0.1
        )

    before = wall_now()
    with proxy_in_thread(f"http://127.0.0.1:{free_port()}", configure=crash_quickly) as proxy:
        state = wait_for(lambda: (s := ollama_state(proxy))["state"] == "failed" and s, "supervision to give up")
    crashes = [datetime.fromisoformat(at) for at in state["crash_times"]]
    assert len(crashes) == 5 and before <= crashes[0] and crashes == sorted(crashes) and crashes[-1] <= wall_now()


def test_client_commands_find_an_engine_wherever_it_listens(upstream: tuple[FakeOllama, str]) -> None:
    import subprocess
    import sys

    with proxy_process(upstream[1]) as proxy:  # --port 0: not where the settings say
        stats = subprocess.run(
            [sys.executable, "-m", "core", "stats"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert stats.returncode == 0 and proxy.url in stats.stdout


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
def test_ollama_does_not_outlive_serve_however_it_ends(how: signal.Signals) -> None:
    context, _ = supervised()
    with context as proxy:
        pid = wait_for(running(proxy), "Ollama to run")["pid"]
        assert proxy.process is not None
        proxy.process.send_signal(how)
        proxy.process.wait(timeout=60)
        wait_for(
            lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
            "Ollama to end with serve",
        )
    if how == signal.SIGHUP:
        assert proxy.process.returncode == 0


def test_a_new_thread_count_never_moves_ollama_off_the_upstream() -> None:
    context, upstream = supervised(env={"OLLACACHE_OLLAMA_ENV": f"OLLAMA_HOST=127.0.0.1:{free_port()}"})
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        assert httpx.get(upstream + "/_fake/env").json()["env"]["OLLAMA_HOST"] == upstream.removeprefix("http://")
        reply = httpx.post(proxy.url + "/-/tuning", json={"num_thread": 1}, headers=proxy.auth).json()
        assert reply["ollama_restart"].startswith("restarting")
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to restart")
        env = httpx.get(upstream + "/_fake/env").json()["env"]
    assert env["OLLAMA_HOST"] == upstream.removeprefix("http://") and env["LLAMA_ARG_THREADS"] == "1"


def test_a_remote_upstream_is_never_started_here() -> None:
    from core.engine.startup import is_local, should_start

    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("192.0.2.10") and not is_local("ollama.example.com")
    assert should_start("auto", binary_found=True, answered=False, local=True)
    assert not should_start("auto", binary_found=True, answered=False, local=False)
    assert not should_start("always", binary_found=True, answered=False, local=False)


def test_a_crash_is_pushed_to_event_subscribers_as_ollama_did_exit() -> None:
    context, upstream = supervised()
    with context as proxy:
        wait_for(running(proxy), "Ollama to run")
        with httpx.stream("GET", proxy.url + "/-/events", timeout=30) as events:
            lines = events.iter_lines()
            assert next(lines) == "event: stats"
            httpx.post(upstream + "/_fake/crash")
            names = (line.removeprefix("event: ") for line in lines if line.startswith("event: "))
            assert next(name for name in names if name.startswith("ollama_")) == "ollama_did_exit"


def test_a_request_sent_while_ollama_starts_waits_for_it_instead_of_failing() -> None:
    """Tools started at login together with Ollacache must not see errors for Ollama's first seconds."""
    context, upstream = supervised(env={"FAKE_OLLAMA_START_DELAY_S": "1.5"})
    with context as proxy:
        assert httpx.get(proxy.url + "/-/health").json()["ollama"]["state"] == "starting"
        answer = httpx.post(proxy.url + "/api/chat", json=CHAT, timeout=60)
        tags = httpx.get(proxy.url + "/api/tags", timeout=60)  # any route, not only the cached ones
    assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
    assert tags.status_code == 200


def test_the_wait_for_a_starting_ollama_is_bounded_by_the_setting() -> None:
    context, upstream = supervised(env={"FAKE_OLLAMA_START_DELAY_S": "30", "OLLACACHE_START_WAIT": "0.3"})
    with context as proxy:
        answer = httpx.post(proxy.url + "/api/chat", json=CHAT, timeout=60)
    assert answer.status_code == 502
    assert "Ollama is starting" in answer.json()["error"]


def test_losing_an_attached_ollama_shows_at_the_first_request_that_cannot_reach_it() -> None:
    """With the periodic check an hour away, only the failed request can have told supervision."""

    def hourly(server: _Server) -> None:
        server.engine.supervisor.policy = Policy(check_interval_s=3600)

    fake = serve_in_thread()
    _, url = fake.__enter__()
    with proxy_in_thread(url, configure=hourly) as proxy:
        wait_for(lambda: ollama_state(proxy)["state"] == "attached", "the attach")
        fake.__exit__(None, None, None)  # Ollama goes away
        assert httpx.post(proxy.url + "/api/chat", json=CHAT).status_code == 502
        state = wait_for(lambda: (s := ollama_state(proxy))["state"] == "unhealthy" and s, "Ollama to be missed")
    assert state["reason"] == f"Ollama stopped answering at {url}; cached answers are still served"
    assert state["check_error"]  # the technical cause, apart from the words
