"""Prometheus exposition: parse render_prometheus output back and check the values a scraper would see."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.observe.metrics import CONTENT_TYPE, render_prometheus
from core.observe.resources import ResourceSampler
from core.observe.stats import Stats

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: bytes) -> tuple[Samples, dict[str, str]]:
    """Samples by (name, labels), and each family's type by name."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
def snapshot() -> dict[str, Any]:
    stats = Stats(clock=lambda: 100.0, wall=lambda: 0.0)
    for ms in range(1, 101):
        stats.record("hit", route="/api/chat", model="llama3:8b", latency_s=ms / 1000, saved_s=2.0, saved_tokens=10)
    stats.record("miss", route="/api/chat", model="llama3:8b", latency_s=1.5)
    stats.record("miss", route="/v1/embeddings", model='odd "name"\\x', latency_s=0.25)
    stats.record("bypass", route="/api/tags", model=None, latency_s=0.004)
    return stats.snapshot(entries=42, bytes_=123_456)


RESOURCES = {
    "system": {
        "cpu_percent": 12.5,
        "memory_percent": 40.0,
        "memory_used_bytes": 4 << 30,
        "memory_total_bytes": 10 << 30,
        "cpu_count": 8,
    },
    "proxy": {"pid": 10, "cpu_percent": 3.0, "rss_bytes": 50 << 20},
    "ollama": {"pid": 20, "cpu_percent": 180.0, "rss_bytes": 5 << 30, "processes": 3},
}


def test_request_counters(snapshot: dict[str, Any]) -> None:
    samples, types = parse(render_prometheus(snapshot, None))
    assert types["ollacache_requests"] == "counter"
    assert samples[key("ollacache_requests_total", outcome="hit")] == 100
    assert samples[key("ollacache_requests_total", outcome="miss")] == 2
    assert samples[key("ollacache_requests_total", outcome="bypass")] == 1
    assert samples[key("ollacache_requests_total", outcome="error")] == 0
    assert samples[key("ollacache_model_requests_total", model="llama3:8b", outcome="hit")] == 100
    assert samples[key("ollacache_model_requests_total", model='odd "name"\\x', outcome="miss")] == 1
    assert samples[key("ollacache_route_requests_total", route="/api/tags", outcome="bypass")] == 1
    assert samples[key("ollacache_route_requests_total", route="/api/chat", outcome="miss")] == 1
    assert samples[key("ollacache_time_saved_seconds_total")] == pytest.approx(200.0)
    assert samples[key("ollacache_tokens_saved_total")] == 1000
    assert samples[key("ollacache_model_tokens_saved_total", model="llama3:8b")] == 1000
    assert samples[key("ollacache_route_time_saved_seconds_total", route="/api/chat")] == pytest.approx(200.0)
    assert samples[key("ollacache_hit_rate")] == pytest.approx(100 / 102)
    assert samples[key("ollacache_uptime_seconds")] == 0.0


def test_latency_quantiles_are_in_seconds_and_empty_windows_are_left_out(snapshot: dict[str, Any]) -> None:
    samples, types = parse(render_prometheus(snapshot, None))
    assert types["ollacache_latency_seconds"] == "gauge"
    assert samples[key("ollacache_latency_seconds", outcome="hit", quantile="0.5")] == pytest.approx(0.050)
    assert samples[key("ollacache_latency_seconds", outcome="hit", quantile="0.95")] == pytest.approx(0.095)
    assert samples[key("ollacache_latency_seconds", outcome="hit", quantile="0.99")] == pytest.approx(0.099)
    assert samples[key("ollacache_latency_seconds", outcome="miss", quantile="0.99")] == pytest.approx(1.5)
    assert samples[key("ollacache_latency_window_requests", outcome="hit")] == 100
    assert samples[key("ollacache_latency_window_requests", outcome="error")] == 0
    assert not [k for k in samples if k[0] == "ollacache_latency_seconds" and ("outcome", "error") in k[1]]


def test_store_size(snapshot: dict[str, Any]) -> None:
    samples, _ = parse(render_prometheus(snapshot, None))
    assert samples[key("ollacache_entries")] == 42
    assert samples[key("ollacache_store_bytes")] == 123_456

    snapshot["store"] = {"entries": None, "bytes": None}  # store unavailable: no made-up zeros
    samples, _ = parse(render_prometheus(snapshot, None))
    assert key("ollacache_entries") not in samples
    assert key("ollacache_store_bytes") not in samples


def test_resource_gauges(snapshot: dict[str, Any]) -> None:
    samples, _ = parse(render_prometheus(snapshot, RESOURCES))
    assert samples[key("ollacache_system_cpu_percent")] == 12.5
    assert samples[key("ollacache_system_memory_used_bytes")] == 4 << 30
    assert samples[key("ollacache_system_memory_total_bytes")] == 10 << 30
    assert samples[key("ollacache_system_cpu_count")] == 8
    assert samples[key("ollacache_process_cpu_percent", process="proxy")] == 3.0
    assert samples[key("ollacache_process_resident_memory_bytes", process="proxy")] == 50 << 20
    assert samples[key("ollacache_process_cpu_percent", process="ollama")] == 180.0
    assert samples[key("ollacache_process_count", process="ollama")] == 3

    samples, _ = parse(render_prometheus(snapshot, {**RESOURCES, "ollama": None}))  # Ollama not running
    assert key("ollacache_process_cpu_percent", process="ollama") not in samples
    assert key("ollacache_process_cpu_percent", process="proxy") in samples


def test_without_resources_there_are_no_resource_metrics(snapshot: dict[str, Any]) -> None:
    samples, _ = parse(render_prometheus(snapshot, None))
    assert not [name for name, _ in samples if "system" in name or "process" in name]


def test_a_live_sample_and_a_fresh_proxy_render() -> None:
    text = render_prometheus(Stats().snapshot(), ResourceSampler().sample())
    samples, _ = parse(text)
    assert samples[key("ollacache_requests_total", outcome="hit")] == 0
    assert samples[key("ollacache_hit_rate")] == 0.0
    assert samples[key("ollacache_process_resident_memory_bytes", process="proxy")] > 0
    assert not [name for name, _ in samples if not name.startswith("ollacache_")]
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_savings_per_client_have_a_client_label() -> None:
    stats = Stats(clock=lambda: 100.0, wall=lambda: 0.0)
    stats.record(
        "hit", route="/api/chat", model="m", latency_s=0.001, saved_s=2.5, saved_tokens=40, client="ollama-python"
    )
    stats.record("miss", route="/v1/chat/completions", model="m", latency_s=1.0, client="openai-python")
    samples, types = parse(render_prometheus(stats.snapshot(), None))
    assert types["ollacache_client_requests"] == "counter"
    assert samples[key("ollacache_client_requests_total", client="ollama-python", outcome="hit")] == 1
    assert samples[key("ollacache_client_requests_total", client="openai-python", outcome="miss")] == 1
    assert samples[key("ollacache_client_time_saved_seconds_total", client="ollama-python")] == pytest.approx(2.5)
    assert samples[key("ollacache_client_tokens_saved_total", client="ollama-python")] == 40
    assert samples[key("ollacache_client_tokens_saved_total", client="openai-python")] == 0
