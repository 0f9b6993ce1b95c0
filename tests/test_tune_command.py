"""`ollacache tune` and the control API's tuning calls, against the fake Ollama's speed curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, RunningProxy, proxy_process
from tests.test_supervisor_process import running, supervised, wait_for

# These tests read or take Ollama's default address (127.0.0.1:11434) or the proxy's (11435).
pytestmark = pytest.mark.usefixtures("default_ports")

HYBRID = str(ROOT / "tests" / "data" / "hw" / "linux-intel-meteorlake-155h")


def tune(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "tune", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_the_best_point_of_the_curve_wins_even_when_it_is_not_the_performance_cores(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    fake.configure(speed_curve={"3": 6.0, "6": 12.0, "16": 14.0, "22": 19.0})
    result = tune("--upstream", url, "--runs", "2", "--json", env={"OLLACACHE_HW_ROOT": HYBRID})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"model", "results", "best"} and report["model"] == "llama3.2:latest"
    assert [r["num_thread"] for r in report["results"]] == [6, 16, 22, 3]
    assert report["best"] == {"num_thread": 22, "tokens_per_s": 19.0}
    assert "[ 1/12]" in result.stderr  # progress goes to stderr, the JSON alone to stdout
    assert sorted(b["options"]["num_thread"] for b in fake.received("/api/generate")) == sorted([6, 16, 22, 3] * 3)


def test_the_table_shows_a_bar_per_candidate_and_the_winner(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(speed_curve={"1": 4.0, "2": 9.0})
    result = tune("--upstream", url, "--runs", "1")
    assert result.returncode == 0, result.stderr
    assert "2 threads" in result.stdout and "Fastest: 2 threads" in result.stdout and "█" in result.stdout


def test_bad_input_is_refused_and_changes_nothing(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    url = upstream[1]
    cases = [
        (["--runs", "0"], "runs"),
        (["--model", "no-such-model"], "llama3.2:latest"),
        (["--upstream", "http://127.0.0.1:9"], "127.0.0.1:9"),
    ]
    for args, said in cases:
        result = tune(*(["--upstream", url] if "--upstream" not in args else []), *args, "--apply")
        assert result.returncode != 0 and said in result.stderr, (args, result.stderr)
    assert not (tmp_path / "config" / "config.toml").exists()


def test_pointed_at_the_proxy_it_measures_ollama_behind_it(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with proxy_process(url) as proxy:
        result = tune("--upstream", proxy.url, "--runs", "1", "--json")
    assert result.returncode == 0 and f"measuring its upstream {url}" in result.stderr
    assert len(fake.received("/api/generate")) == 2 * len(json.loads(result.stdout)["results"])


def test_apply_keeps_the_winner_and_restarts_the_supervised_ollama_with_it(tmp_path: Path) -> None:
    context, upstream = supervised(env={"OLLACACHE_HW_ROOT": HYBRID})
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        httpx.post(upstream + "/_fake/config", json={"speed_curve": {"3": 20.0, "6": 10.0, "22": 5.0}})
        port = proxy.url.rsplit(":", 1)[1]
        result = tune("--runs", "1", "--apply", env={"OLLACACHE_PORT": port, "OLLACACHE_HW_ROOT": HYBRID})
        assert result.returncode == 0, result.stderr
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to restart")
        env = httpx.get(upstream + "/_fake/env").json()["env"]
    config = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert config["tuning"]["num_thread"] == 3 and env["LLAMA_ARG_THREADS"] == "3"


def test_the_control_api_measures_in_the_background(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(speed_curve={"1": 7.0, "2": 3.0})
    with proxy_process(url) as proxy:
        assert httpx.post(proxy.url + "/-/tune", json={"runs": 1}).status_code == 401
        started = httpx.post(proxy.url + "/-/tune", json={"runs": 1}, headers=proxy.auth)
        assert started.status_code == 202
        done = wait_for(lambda: (s := httpx.get(proxy.url + "/-/tune").json())["state"] == "done" and s, "tune")
        seen = httpx.get(proxy.url + "/-/stats").json()["tune"]
        bad = httpx.post(proxy.url + "/-/tune", json={"runs": 0}, headers=proxy.auth)
    assert done["result"]["best"]["num_thread"] == 1 and seen["state"] == "done"
    assert bad.status_code == 400


def test_keeping_a_setting_keeps_the_users_file(tmp_path: Path) -> None:
    from core.config.file import write_setting

    dotfiles = tmp_path / "dotfiles" / "ollacache.toml"
    dotfiles.parent.mkdir()
    dotfiles.write_text("# my settings\n[proxy]\nport = 12000  # chosen\n")
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").symlink_to(dotfiles)
    write_setting(tmp_path / "config", "tuning.num_thread", 6)
    text = dotfiles.read_text()
    assert (tmp_path / "config" / "config.toml").is_symlink()
    assert "# my settings" in text and "port = 12000  # chosen" in text
    assert tomllib.loads(text)["tuning"]["num_thread"] == 6


def test_apply_with_a_wrong_token_keeps_the_setting_and_says_which_file(
    proxy: RunningProxy, fake: FakeOllama, tmp_path: Path
) -> None:
    fake.configure(speed_curve={"1": 7.0, "2": 3.0})
    (tmp_path / "config" / "token").write_text("not-the-engines-token\n")
    result = tune("--runs", "1", "--apply", "--json")  # finds the engine, and Ollama behind it, via running.json
    assert result.returncode == 1
    assert f"the engine at {proxy.url} refused the control token" in result.stderr
    assert str(tmp_path / "config" / "token") in result.stderr and "Traceback" not in result.stderr
    best = json.loads(result.stdout)["best"]["num_thread"]
    assert tomllib.loads((tmp_path / "config" / "config.toml").read_text())["tuning"]["num_thread"] == best
