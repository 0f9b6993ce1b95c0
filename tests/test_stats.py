"""Stats: counts, hit rate, percentiles, rolling rates, persistence and a corrupt stats file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from core.observe.metrics import render_prometheus
from core.observe.stats import LATENCY_SAMPLES, MAX_KEYS, OTHER_KEY, Stats


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


WALL = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def make(path: Path | None = None, clock: Clock | None = None) -> Stats:
    return Stats(path, clock=clock or Clock(), wall=lambda: WALL)


def test_counts_and_hit_rate_after_a_mix_of_requests() -> None:
    stats = make()
    for _ in range(3):
        stats.record("hit", route="/api/chat", model="llama3", latency_s=0.001, saved_s=2.0, saved_tokens=100)
    stats.record("miss", route="/api/chat", model="llama3", latency_s=2.0)
    stats.record("miss", route="/api/embed", model="nomic", latency_s=0.5)
    stats.record("bypass", route="/api/tags", model=None, latency_s=0.01)
    stats.record("error", route="/api/chat", model="gone", latency_s=0.02)

    snap = stats.snapshot(entries=7, bytes_=4096)
    assert snap["totals"] == {
        "requests": 7,
        "hits": 3,
        "misses": 2,
        "bypass": 1,
        "errors": 1,
        "shared": 0,
        "hit_rate": 3 / 5,
        "time_saved_s": 6.0,
        "tokens_saved": 300,
    }
    assert snap["by_model"]["llama3"] == {
        "requests": 4,
        "hits": 3,
        "misses": 1,
        "bypass": 0,
        "errors": 0,
        "shared": 0,
        "hit_rate": 0.75,
        "time_saved_s": 6.0,
        "tokens_saved": 300,
    }
    assert snap["by_model"]["nomic"]["hit_rate"] == 0.0
    assert set(snap["by_model"]) == {"llama3", "nomic", "gone"}  # requests without a model: not a model row
    assert snap["by_route"]["/api/tags"]["bypass"] == 1
    assert sum(row["requests"] for row in snap["by_route"].values()) == 7  # routes cover every request
    assert snap["store"] == {"entries": 7, "bytes": 4096}
    assert snap["since"] == "2023-11-14T22:13:20+00:00"
    json.dumps(snap)  # JSON-ready as is


def test_hit_rate_is_zero_before_any_lookup() -> None:
    stats = make()
    stats.record("bypass", route="/api/ps", model=None, latency_s=0.001)
    assert stats.snapshot()["totals"]["hit_rate"] == 0.0
    assert stats.snapshot()["rates"]["1m"]["hit_rate"] == 0.0


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        make().record("hot", route="/api/chat", model="m", latency_s=0.0)  # type: ignore[arg-type]


def test_latency_percentiles_of_a_known_sample_set() -> None:
    stats = make()
    for ms in range(100, 0, -1):  # 1..100 ms, recorded out of order
        stats.record("hit", route="/api/generate", model="m", latency_s=ms / 1000)
    latency = stats.snapshot()["latency_ms"]
    assert latency["hit"]["count"] == 100
    assert latency["hit"]["p50"] == pytest.approx(50.0)
    assert latency["hit"]["p95"] == pytest.approx(95.0)
    assert latency["hit"]["p99"] == pytest.approx(99.0)
    assert latency["miss"] == {"p50": None, "p95": None, "p99": None, "count": 0}


@pytest.mark.parametrize("latency_s", [None, 0.0, 0.003])
def test_a_bypass_is_counted_without_a_latency(latency_s: float | None) -> None:
    stats = make()
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    stats.record("bypass", route="/api/chat", model=None, latency_s=latency_s)
    snap = stats.snapshot()
    assert snap["totals"]["bypass"] == 1 and snap["by_route"]["/api/chat"]["bypass"] == 1
    assert set(snap["latency_ms"]) == {"hit", "miss", "error", "shared"}  # no bypass figures, not even zeros
    metrics = render_prometheus(snap, None).decode()
    assert 'ollacache_requests_total{outcome="bypass"} 1.0' in metrics
    assert not [line for line in metrics.splitlines() if line.startswith("ollacache_latency") and "bypass" in line]


def test_a_request_without_a_measured_latency_is_counted_and_leaves_the_percentiles_alone() -> None:
    stats = make()
    stats.record("miss", route="/api/chat", model="m", latency_s=0.2)
    stats.record("miss", route="/api/chat", model="m", latency_s=None)
    snap = stats.snapshot()
    assert snap["totals"]["misses"] == 2
    assert snap["latency_ms"]["miss"] == {
        "p50": pytest.approx(200.0),
        "p95": pytest.approx(200.0),
        "p99": pytest.approx(200.0),
        "count": 1,
    }


def test_latency_window_keeps_only_recent_samples() -> None:
    stats = make()
    for _ in range(50):
        stats.record("miss", route="/api/chat", model="m", latency_s=60.0)  # a slow start, long ago
    for _ in range(LATENCY_SAMPLES):
        stats.record("miss", route="/api/chat", model="m", latency_s=0.2)
    miss = stats.snapshot()["latency_ms"]["miss"]
    assert miss["count"] == LATENCY_SAMPLES
    assert miss["p99"] == pytest.approx(200.0)  # the 60 s samples have left the window
    assert stats.snapshot()["totals"]["misses"] == LATENCY_SAMPLES + 50  # totals still count them


def test_rolling_rates_forget_old_seconds_as_the_clock_advances() -> None:
    clock = Clock(1000.0)
    stats = make(clock=clock)
    clock.now = 5000.0  # long uptime: windows are full length
    for _ in range(60):
        stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    for _ in range(20):
        stats.record("miss", route="/api/chat", model="m", latency_s=1.0)

    rates = stats.snapshot()["rates"]
    assert rates["1m"]["hits_per_s"] == pytest.approx(1.0)
    assert rates["1m"]["requests_per_s"] == pytest.approx(80 / 60)
    assert rates["5m"]["misses_per_s"] == pytest.approx(20 / 300)
    assert rates["15m"]["requests_per_s"] == pytest.approx(80 / 900)
    assert rates["1m"]["hit_rate"] == pytest.approx(0.75)

    clock.now += 59.5  # still within the minute
    assert stats.snapshot()["rates"]["1m"]["hits_per_s"] == pytest.approx(1.0)
    clock.now += 1.0
    rates = stats.snapshot()["rates"]
    assert rates["1m"]["requests_per_s"] == 0.0
    assert rates["1m"]["hit_rate"] == 0.0
    assert rates["5m"]["hits_per_s"] == pytest.approx(60 / 300)

    clock.now = 5000.0 + 300
    assert stats.snapshot()["rates"]["5m"]["requests_per_s"] == 0.0
    assert stats.snapshot()["rates"]["15m"]["hits_per_s"] == pytest.approx(60 / 900)

    clock.now = 5000.0 + 900  # the same ring bucket as the first burst: old counts must not leak in
    stats.record("miss", route="/api/chat", model="m", latency_s=1.0)
    rates = stats.snapshot()["rates"]
    assert rates["15m"]["requests_per_s"] == pytest.approx(1 / 900)
    assert rates["15m"]["hits_per_s"] == 0.0
    assert stats.snapshot()["totals"]["requests"] == 81


def test_rates_of_a_young_process_are_not_diluted_by_the_window() -> None:
    clock = Clock(0.0)
    stats = make(clock=clock)
    clock.now = 5.0
    for _ in range(10):
        stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    rates = stats.snapshot()["rates"]
    assert rates["1m"]["requests_per_s"] == pytest.approx(2.0)  # 10 requests in 5 s of uptime
    assert rates["15m"]["requests_per_s"] == pytest.approx(2.0)
    assert stats.snapshot()["uptime_s"] == pytest.approx(5.0)


def test_totals_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    first = make(path)
    first.record("hit", route="/api/chat", model="llama3", latency_s=0.001, saved_s=1.5, saved_tokens=42)
    first.record("miss", route="/api/embed", model="nomic", latency_s=0.3)
    first.record("bypass", route="/api/tags", model=None, latency_s=0.01)
    first.save()
    before = first.snapshot()

    second = Stats(path, clock=Clock(), wall=lambda: WALL + 86_400)
    after = second.snapshot()
    for key in ("totals", "by_model", "by_route", "since"):
        assert after[key] == before[key]
    assert after["rates"]["1m"]["requests_per_s"] == 0.0  # rates and latencies start fresh
    assert after["latency_ms"]["hit"]["count"] == 0

    second.record("hit", route="/api/chat", model="llama3", latency_s=0.001, saved_s=1.5, saved_tokens=42)
    assert second.snapshot()["by_model"]["llama3"]["hits"] == 2


def test_save_async_writes_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "stats.json"
    stats = make(path)
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    asyncio.run(stats.save_async())
    assert make(path).snapshot()["totals"]["hits"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]  # no temp file left behind


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_stats_file_is_private_to_the_user(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    stats = make(path)
    stats.record("miss", route="/api/chat", model="m", latency_s=0.1)
    stats.save()
    assert path.stat().st_mode & 0o777 == 0o600
    stats.save()  # replacing keeps it private
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"since": "2023-01-01T00:00:00+00:00", "totals": {"hits": -3}}',
        b'{"since": "yesterday", "totals": {}}',
        b'{"since": "2023-01-01T00:00:00+00:00", "totals": {}, "by_model": {"m": {"hits": "many"}}}',
    ],
)
def test_a_corrupt_file_is_moved_aside_and_stats_start_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "stats.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="core.observe.stats"):
        stats = make(path)
    assert "moved it to" in caplog.text
    assert (tmp_path / "stats.json.corrupt").read_bytes() == content
    assert not path.exists()
    assert stats.snapshot()["totals"]["requests"] == 0

    stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    stats.save()
    assert make(path).snapshot()["totals"]["hits"] == 1


def test_an_unreadable_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "stats.json"
    path.mkdir()  # reading a directory fails with an OSError on every platform
    with caplog.at_level(logging.WARNING, logger="core.observe.stats"):
        stats = make(path)
    assert "unusable" in caplog.text
    assert (tmp_path / "stats.json.corrupt").is_dir()
    stats.record("miss", route="/api/chat", model="m", latency_s=0.1)
    stats.save()
    assert make(path).snapshot()["totals"]["misses"] == 1


def test_no_file_means_no_persistence(tmp_path: Path) -> None:
    stats = make(None)
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001)
    stats.save()
    assert stats.path is None
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_is_a_fresh_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stats = make(tmp_path / "stats.json")
    assert stats.snapshot()["totals"]["requests"] == 0
    assert caplog.text == ""
    assert not (tmp_path / "stats.json.corrupt").exists()


def test_reset_zeroes_everything_and_restarts_since() -> None:
    wall = [WALL]
    stats = Stats(clock=Clock(), wall=lambda: wall[0])
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001, saved_s=1.0, saved_tokens=5)
    wall[0] = WALL + 3600
    stats.reset()
    snap = stats.snapshot()
    assert snap["totals"]["requests"] == 0
    assert snap["by_model"] == {} and snap["by_route"] == {}
    assert snap["rates"]["1m"]["requests_per_s"] == 0.0
    assert snap["latency_ms"]["hit"]["count"] == 0
    assert snap["since"] == "2023-11-14T23:13:20+00:00"


def test_random_model_names_cannot_grow_the_table_without_bound() -> None:
    stats = make()
    for n in range(MAX_KEYS + 5):
        stats.record("miss", route="/api/chat", model=f"model-{n}", latency_s=0.1)
    by_model = stats.snapshot()["by_model"]
    assert len(by_model) == MAX_KEYS + 1
    assert by_model[OTHER_KEY]["misses"] == 5
    assert by_model["model-0"]["misses"] == 1
    stats.record("hit", route="/api/chat", model="model-0", latency_s=0.001)  # known names still count
    assert stats.snapshot()["by_model"]["model-0"]["hits"] == 1


def test_saved_file_is_readable_json(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    stats = make(path)
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001, saved_s=0.5, saved_tokens=9)
    stats.save()
    data = json.loads(path.read_text())
    assert data["totals"]["hits"] == 1 and data["totals"]["tokens_saved"] == 9
    assert os.path.getsize(path) < 4096


def test_savings_are_counted_per_client() -> None:
    stats = make()
    for _ in range(3):
        stats.record(
            "hit",
            route="/api/chat",
            model="llama3",
            latency_s=0.001,
            saved_s=2.0,
            saved_tokens=100,
            client="ollama-python",
        )
    stats.record("miss", route="/api/chat", model="llama3", latency_s=2.0, client="ollama-python")
    stats.record("miss", route="/v1/chat/completions", model="llama3", latency_s=1.0, client="openai-python")
    stats.record(
        "hit",
        route="/v1/chat/completions",
        model="llama3",
        latency_s=0.001,
        saved_s=1.0,
        saved_tokens=30,
        client="openai-python",
    )
    stats.record("bypass", route="/api/chat", model=None, latency_s=None)  # no client known: totals only
    clients = stats.snapshot()["clients"]
    assert clients["ollama-python"] == {
        "requests": 4,
        "hits": 3,
        "misses": 1,
        "bypass": 0,
        "errors": 0,
        "shared": 0,
        "hit_rate": 0.75,
        "time_saved_s": 6.0,
        "tokens_saved": 300,
    }
    assert (clients["openai-python"]["hits"], clients["openai-python"]["tokens_saved"]) == (1, 30)
    assert set(clients) == {"ollama-python", "openai-python"}
    assert stats.snapshot()["totals"]["requests"] == 7


def test_client_names_cannot_grow_the_table_without_bound() -> None:
    stats = make()
    for n in range(MAX_KEYS + 3):
        stats.record("miss", route="/api/chat", model="m", latency_s=0.1, client=f"tool-{n}")
    clients = stats.snapshot()["clients"]
    assert len(clients) == MAX_KEYS + 1 and clients[OTHER_KEY]["misses"] == 3


def test_per_client_totals_survive_a_restart_and_older_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    first = make(path)
    first.record("hit", route="/api/chat", model="m", latency_s=0.001, saved_s=1.5, saved_tokens=42, client="curl")
    first.save()
    assert make(path).snapshot()["clients"] == first.snapshot()["clients"]

    data = json.loads(path.read_text())
    del data["clients"]  # written before clients were counted
    path.write_text(json.dumps(data))
    older = make(path)
    assert older.snapshot()["clients"] == {} and older.snapshot()["totals"]["hits"] == 1
    assert not (tmp_path / "stats.json.corrupt").exists()


def test_todays_counters_start_again_at_local_midnight_and_survive_a_restart_that_day(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    midnight = datetime(2026, 12, 1) + timedelta(days=1)  # local time, as the user's day is
    wall = [(midnight - timedelta(seconds=2)).timestamp()]
    path = tmp_path / "stats.json"
    stats = Stats(path, clock=Clock(), wall=lambda: wall[0])
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001, saved_s=3.0)
    stats.record("miss", route="/api/chat", model="m", latency_s=3.0)
    assert stats.snapshot()["today"] | {"hit_rate": None} == {
        "date": "2026-12-01",
        "requests": 2,
        "hits": 1,
        "misses": 1,
        "bypass": 0,
        "errors": 0,
        "shared": 0,
        "hit_rate": None,
        "time_saved_s": 3.0,
        "tokens_saved": 0,
    }
    wall[0] = midnight.timestamp() + 1
    assert stats.snapshot()["today"]["requests"] == 0  # a new day, even before its first request
    stats.record("hit", route="/api/chat", model="m", latency_s=0.001, saved_s=3.0)
    snap = stats.snapshot()
    assert (snap["today"]["date"], snap["today"]["requests"], snap["totals"]["requests"]) == ("2026-12-02", 1, 3)
    stats.save()
    again = Stats(path, clock=Clock(), wall=lambda: wall[0])  # restarted the same day: today goes on
    assert again.snapshot()["today"]["requests"] == 1
    wall[0] += 86_400
    next_day = Stats(path, clock=Clock(), wall=lambda: wall[0])  # a file from yesterday: today is new
    assert next_day.snapshot()["today"]["requests"] == 0 and next_day.snapshot()["totals"]["requests"] == 3
