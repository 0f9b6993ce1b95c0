"""Tuning by measurement: candidate thread counts from recorded machines, speeds measured on the fake Ollama.

The fake's ``speed_curve`` maps num_thread to tokens per second and shapes the ``eval_duration`` it
reports, so a measurement must find the curve's peak wherever it is. Speeds are in tokens per second.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import ollama
import pytest

from core.cli.tune_text import BAR_WIDTH, FULL, WINNER, bar, format_progress, format_table
from core.tuning.generation import NUM_PREDICT
from core.tuning.measure import Progress, TuneError, TuneResult, candidates, measure, measure_sync, pick_model
from tests.data.hw.machines import AMD, ARM, MTL, VM, copy_tree, linux, write
from tests.fakes.fake_text import curve_speed
from tests.fakes.ollama_server import FakeOllama

MTL_CANDIDATES = [6, 16, 22, 3]  # performance cores, physical cores, logical CPUs, half the performance cores
PEAK_AT_PERFORMANCE_CORES = {"1": 3.0, "3": 8.0, "6": 14.0, "16": 11.0, "22": 9.0}
PEAK_AT_LOGICAL_CPUS = {"3": 6.0, "6": 9.0, "16": 12.0, "22": 15.5}
PEAK_AT_HALF = {"3": 10.0, "6": 9.5, "16": 6.0, "22": 4.0}  # memory-bound: fewer threads win


# --- candidates: pure, on the recorded machines -------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (MTL, MTL_CANDIDATES),
        (AMD, [16, 32, 8]),  # 16 performance = 16 physical cores: one candidate
        (VM, [2, 1]),
        (ARM, [4, 8, 2]),  # big.LITTLE: 4 big cores, 8 cores, 8 CPUs (no SMT), 2
    ],
)
def test_candidates_on_recorded_machines(machine: str, expected: list[int]) -> None:
    assert candidates(linux(machine)) == expected


AMD_CPU_MAX = "sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cpu.max"  # cgroup v2


@pytest.mark.parametrize(
    ("machine", "file", "quota", "expected"),
    [
        (AMD, AMD_CPU_MAX, "1200000 100000", [12, 8]),  # 12 CPUs: 16 and 32 capped to 12, then repeats dropped
        (AMD, AMD_CPU_MAX, "450000 100000", [4]),  # 4.5 CPUs round down
        (VM, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000", [1]),  # cgroup v1, under one CPU: still one thread
    ],
)
def test_a_cgroup_quota_caps_the_candidates(
    tmp_path: Path, machine: str, file: str, quota: str, expected: list[int]
) -> None:
    root = copy_tree(machine, tmp_path)
    write(root, file, quota)
    assert candidates(linux(root)) == expected


@pytest.mark.parametrize(
    ("machine", "allowed", "expected"),
    [
        (MTL, "0-5", [1, 5, 6]),  # one P-core (CPUs 0-1) and four E-cores (2-5)
        (MTL, "2-9", [8, 4]),  # E-cores only: they stand in for the performance cores
        (AMD, "0-3,16-19", [4, 8, 2]),  # four cores with both their threads
    ],
)
def test_an_affinity_mask_limits_the_candidates(
    tmp_path: Path, machine: str, allowed: str, expected: list[int]
) -> None:
    root = copy_tree(machine, tmp_path)
    write(root, "proc/self/status", f"Cpus_allowed_list:\t{allowed}")
    assert candidates(linux(root)) == expected


# --- measuring on the fake Ollama -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "winner"),
    [
        (PEAK_AT_PERFORMANCE_CORES, 6),
        (PEAK_AT_LOGICAL_CPUS, 22),
        (PEAK_AT_HALF, 3),
    ],
)
def test_the_measurement_finds_the_peak_of_the_speed_curve(
    upstream: tuple[FakeOllama, str], curve: dict[str, float], winner: int
) -> None:
    fake, url = upstream
    fake.configure(speed_curve=curve, tokens=NUM_PREDICT + 10)
    result = measure_sync(url, "llama3.2", MTL_CANDIDATES, 2)
    assert result.best.num_thread == winner
    assert result.best.tokens_per_s == pytest.approx(curve[str(winner)])
    assert [row.num_thread for row in result.results] == MTL_CANDIDATES  # measured in the given order
    for row in result.results:
        assert row.tokens_per_s == pytest.approx(curve[str(row.num_thread)])
        assert row.prompt_tokens_per_s == pytest.approx(10 * curve[str(row.num_thread)])
        assert row.eval_count == 2 * NUM_PREDICT and len(row.run_speeds) == 2


def test_each_candidate_gets_one_warm_up_and_the_measured_runs_of_the_same_request(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    fake.configure(speed_curve=PEAK_AT_LOGICAL_CPUS)
    events: list[Progress] = []
    measure_sync(url, "llama3.2", MTL_CANDIDATES, 3, progress=events.append)
    bodies = fake.received("/api/generate")
    assert fake.total_calls("/api/generate") == len(bodies) == 4 * (3 + 1)
    assert fake.total_calls() == 4 * 4  # nothing else: the model was named
    assert [body["options"]["num_thread"] for body in bodies] == [n for n in MTL_CANDIDATES for _ in range(4)]
    assert {
        json.dumps({**body, "options": {**body["options"], "num_thread": 0}}, sort_keys=True) for body in bodies
    } == {
        json.dumps(
            {
                "model": "llama3.2",
                "prompt": bodies[0]["prompt"],
                "stream": False,
                "keep_alive": "5m",
                "options": {"num_thread": 0, "temperature": 0, "seed": 42, "num_predict": NUM_PREDICT},
            },
            sort_keys=True,
        )
    }  # the official client orders the keys its own way
    finished = [event for event in events if event.event == "run_did_finish"]
    assert [event.event for event in events] == ["run_did_start", "run_did_finish"] * 16
    assert [(event.num_thread, event.run, event.step) for event in finished] == [
        (n, run, 4 * i + run + 1) for i, n in enumerate(MTL_CANDIDATES) for run in range(4)
    ]
    assert all(event.steps == 16 and event.runs == 3 for event in events)
    assert [event.tokens_per_s for event in finished][4:8] == [pytest.approx(12.0)] * 4  # 16 threads


def test_without_a_model_the_first_that_can_generate_is_used(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(
        models=[
            {"name": "nomic-embed-text", "capabilities": ["embedding"], "modified_at": "2025-07-01T00:00:00Z"},
            {"name": "qwen3:0.6b", "modified_at": "2025-06-01T00:00:00Z"},
        ]
    )
    assert measure_sync(url, None, [2], 1).model == "qwen3:0.6b"
    assert pick_model([{"name": "all-minilm-embed"}, {"name": "phi4"}]) == "phi4"  # no capabilities listed
    fake.configure(models=[{"name": "mxbai-embed-large", "capabilities": ["embedding"]}])
    with pytest.raises(TuneError, match="no model that can generate text"):
        measure_sync(url, None, [2], 1)


@pytest.mark.asyncio
async def test_the_coroutine_uses_the_callers_client_and_leaves_it_open(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(speed_curve={"1": 4.0, "2": 7.0})
    async with ollama.AsyncClient(url) as client:
        result = await measure(url + "/", "llama3.2", [1, 2, 2], 1, client=client)
        assert (await client.list()).models  # still open
    assert result.best.num_thread == 2 and [row.num_thread for row in result.results] == [1, 2]


def test_the_json_document_has_exactly_the_documented_shape(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(speed_curve=PEAK_AT_PERFORMANCE_CORES)
    document = json.loads(json.dumps(measure_sync(url, "llama3.2", [6, 3], 2).to_json()))
    assert set(document) == {"model", "results", "best"} and document["model"] == "llama3.2"
    assert document["best"] == {"num_thread": 6, "tokens_per_s": 14.0}
    assert [(row["num_thread"], row["tokens_per_s"]) for row in document["results"]] == [(6, 14.0), (3, 8.0)]
    assert set(document["results"][0]) == {
        "num_thread",
        "tokens_per_s",
        "prompt_tokens_per_s",
        "runs",
        "run_tokens_per_s",
        "eval_count",
    }
    assert document["results"][1]["runs"] == 2 and document["results"][1]["prompt_tokens_per_s"] == 80.0


# --- bad input: a clear error, before or instead of any change ---------------------------------------------


def test_an_unknown_model_is_named_with_the_installed_ones(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with pytest.raises(TuneError) as caught:
        measure_sync(url, "mistral:7b", [2, 1], 3)
    message = str(caught.value)
    assert "'mistral:7b' is not installed" in message and url in message
    assert "llama3.2:latest, qwen3:0.6b, nomic-embed-text:latest" in message
    assert fake.total_calls("/api/generate") == 1  # stopped at the first warm-up


def test_an_unreachable_upstream_is_named() -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(TuneError, match=f"cannot reach Ollama at {address}"):
            measure_sync(address, "llama3.2", [2], 1)
        with pytest.raises(TuneError, match=f"cannot reach Ollama at {address}"):
            measure_sync(address, None, [2], 1)


@pytest.mark.parametrize(
    ("runs", "threads", "words"),
    [
        (0, [2], "runs must be a whole number of at least 1, not 0"),
        (-1, [2], "at least 1"),
        (2, [], "no thread counts"),
        (2, [4, 0], "at least 1"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    upstream: tuple[FakeOllama, str], runs: int, threads: list[int], words: str
) -> None:
    fake, url = upstream
    with pytest.raises(TuneError, match=words):
        measure_sync(url, "llama3.2", threads, runs)
    with pytest.raises(TuneError, match="the model name is empty"):
        measure_sync(url, " ", [2], 1)
    assert fake.total_calls() == 0


@pytest.mark.parametrize(
    "address", ["127.0.0.1:11434", "http://", "http://[::1", "http://127.0.0.1:99999", "ftp://127.0.0.1"]
)
def test_an_upstream_that_is_not_a_url_is_refused(address: str) -> None:
    with pytest.raises(TuneError, match="is not an http:// or https:// URL"):
        measure_sync(address, "llama3.2", [2], 1)


def test_ollamas_own_refusal_is_passed_on(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with pytest.raises(TuneError, match="does not support generate"):
        measure_sync(url, "nomic-embed-text", [2], 1)
    fake.configure(fail_status=500, fail_count=1)
    with pytest.raises(TuneError, match=r"llama runner process has terminated.*\(HTTP 500\)"):
        measure_sync(url, "llama3.2", [2], 1)


# --- the text report ------------------------------------------------------------------------------------------


def test_the_table_has_a_bar_per_candidate_scaled_to_the_best_and_marks_the_winner(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    fake.configure(speed_curve=PEAK_AT_LOGICAL_CPUS)
    result: TuneResult = measure_sync(url, "llama3.2", MTL_CANDIDATES, 1)
    lines = format_table(result).splitlines()
    rows = [line for line in lines if line[:7].strip().isdigit()]
    assert [int(row.split()[0]) for row in rows] == [3, 6, 16, 22]  # ascending, as a curve
    assert [row.endswith(WINNER) for row in rows] == [False, False, False, True]
    assert FULL * BAR_WIDTH in rows[3] and FULL * (BAR_WIDTH + 1) not in rows[3]
    assert lines[-1] == "Fastest: 22 threads at 15.5 tokens/s, 158 % faster than 3 threads."


def test_bars_are_drawn_in_eighths_of_a_cell() -> None:
    assert bar(14, 14) == FULL * BAR_WIDTH
    assert bar(7, 14) == FULL * 15 + " " * 15
    assert bar(1, 8, width=1) == "▏" and bar(0, 8, width=2) == "  " and bar(3, 0, width=2) == "  "


def test_progress_lines() -> None:
    assert (
        format_progress(Progress("run_did_start", 6, 0, 3, 1, 16))
        == "[ 1/16] 6 threads, warm-up (Ollama loads the model with this thread count)..."
    )
    assert (
        format_progress(Progress("run_did_finish", 1, 2, 3, 11, 16, 14.04))
        == "[11/16] 1 thread, run 2/3: 14.0 tokens/s"
    )


# --- the fake's speed curve ------------------------------------------------------------------------------------


def test_the_fake_interpolates_its_speed_curve_and_holds_the_ends() -> None:
    curve = {"2": 4.0, "6": 12.0}
    assert [curve_speed(curve, n) for n in (1, 2, 3, 6, 32)] == [4.0, 4.0, 6.0, 12.0, 12.0]
    assert curve_speed(curve, None) == 4.0  # no num_thread: the lowest key


def test_the_fake_reports_durations_from_its_curve_and_rejects_a_bad_one(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    with httpx.Client(base_url=url) as http:
        assert http.post("/_fake/config", json={"speed_curve": {"4": 8.0}, "tokens": 16}).status_code == 200
        stats = http.post(
            "/api/generate",
            json={"model": "llama3.2", "prompt": "one two three", "stream": False, "options": {"num_thread": 4}},
        ).json()
        assert (stats["eval_count"], stats["eval_duration"]) == (16, 2_000_000_000)  # 16 tokens at 8/s
        assert stats["prompt_eval_duration"] == round(stats["prompt_eval_count"] * 1e9 / 80)
        for bad in ({"0": 5.0}, {"two": 5.0}, {"2": 0}, {}, [1, 2]):
            answer = http.post("/_fake/config", json={"speed_curve": bad})
            assert answer.status_code == 400 and "speed_curve" in answer.json()["error"]
