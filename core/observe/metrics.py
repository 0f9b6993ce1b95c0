"""Prometheus text exposition of a stats snapshot and a resource sample (served at ``/-/metrics``).

The numbers already live in `core.observe.stats.Stats` and `core.observe.resources.ResourceSampler`; this module only
translates one snapshot into metric families, through prometheus_client's own types and encoder (so
names, label escaping and number formatting follow the format), into a fresh registry per scrape.

Units follow Prometheus conventions: seconds (latency quantiles are converted from the snapshot's ms),
bytes, ratios 0-1 for hit rate; CPU stays in percent as psutil reports it (per core for processes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.observe.stats import OUTCOME_FIELDS

PREFIX = "ollacache_"
#: Content-Type of `render_prometheus` output (the classic text format that `generate_latest` writes).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render_prometheus(snapshot: Mapping[str, Any], resources: Mapping[str, Any] | None) -> bytes:
    """Encode ``Stats.snapshot()`` and ``ResourceSampler.sample()`` (or None) as Prometheus text.

    Values that are None in the snapshot (an empty latency window, an unknown store size) are left out
    rather than reported as zero. Any key of ``resources`` other than ``"system"`` whose value is a
    process (``"proxy"``, a tree such as ``"ollama"``) becomes a ``process`` label value.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, resources))
    return generate_latest(registry)


class _SnapshotCollector(Collector):
    """Yields the metric families of one snapshot; registered into a throwaway registry."""

    def __init__(self, snapshot: Mapping[str, Any], resources: Mapping[str, Any] | None) -> None:
        self._snapshot = snapshot
        self._resources = resources

    def collect(self) -> Iterator[Metric]:
        yield from _requests(self._snapshot)
        yield from _latency(self._snapshot["latency_ms"])
        yield from _store(self._snapshot)
        if self._resources is not None:
            yield from _resources(self._resources)


def _requests(snapshot: Mapping[str, Any]) -> Iterator[Metric]:
    totals = snapshot["totals"]
    requests = CounterMetricFamily(
        PREFIX + "requests", "Requests answered by the proxy, by outcome.", labels=["outcome"]
    )
    for outcome, field in OUTCOME_FIELDS.items():
        if field in totals:
            requests.add_metric([outcome], totals[field])
    yield requests

    for scope, label in (("by_model", "model"), ("by_route", "route"), ("clients", "client"), ("keys", "key")):
        counts = CounterMetricFamily(
            f"{PREFIX}{label}_requests", f"Requests by {label} and outcome.", labels=[label, "outcome"]
        )
        saved_s = CounterMetricFamily(
            f"{PREFIX}{label}_time_saved_seconds", f"Upstream seconds saved by cache hits, by {label}.", labels=[label]
        )
        saved_tokens = CounterMetricFamily(
            f"{PREFIX}{label}_tokens_saved",
            f"Prompt and completion tokens saved by cache hits, by {label}.",
            labels=[label],
        )
        for name, tally in snapshot.get(scope, {}).items():
            for outcome, field in OUTCOME_FIELDS.items():
                if field in tally:
                    counts.add_metric([name, outcome], tally[field])
            saved_s.add_metric([name], tally["time_saved_s"])
            saved_tokens.add_metric([name], tally["tokens_saved"])
        yield from (counts, saved_s, saved_tokens)

    yield CounterMetricFamily(
        PREFIX + "time_saved_seconds",
        "Upstream seconds saved by cache hits and shared answers.",
        value=totals["time_saved_s"],
    )
    yield CounterMetricFamily(
        PREFIX + "tokens_saved",
        "Prompt and completion tokens saved by cache hits and shared answers.",
        value=totals["tokens_saved"],
    )
    yield GaugeMetricFamily(
        PREFIX + "hit_rate",
        "(Hits + shared) / (hits + shared + misses) since stats began, 0 when none.",
        value=totals["hit_rate"],
    )
    yield GaugeMetricFamily(PREFIX + "uptime_seconds", "Seconds since the proxy started.", value=snapshot["uptime_s"])


def _latency(latency_ms: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    quantiles = GaugeMetricFamily(
        PREFIX + "latency_seconds",
        "Time to answer the client (a miss: until the last byte), quantiles over "
        "the most recent requests of each outcome.",
        labels=["outcome", "quantile"],
    )
    samples = GaugeMetricFamily(
        PREFIX + "latency_window_requests",
        "Requests in the window the latency quantiles are computed over.",
        labels=["outcome"],
    )
    for outcome, window in latency_ms.items():
        samples.add_metric([outcome], window["count"])
        for key, value in window.items():
            if key.startswith("p") and value is not None:
                quantiles.add_metric([outcome, str(int(key[1:]) / 100)], value / 1000.0)
    yield from (quantiles, samples)


def _store(snapshot: Mapping[str, Any]) -> Iterator[Metric]:
    store = snapshot["store"]
    if store.get("entries") is not None:
        yield GaugeMetricFamily(PREFIX + "entries", "Entries in the cache store.", value=store["entries"])
    if store.get("bytes") is not None:
        yield GaugeMetricFamily(PREFIX + "store_bytes", "Size of the cache store on disk.", value=store["bytes"])


def _resources(resources: Mapping[str, Any]) -> Iterator[Metric]:
    system = resources.get("system")
    if system is not None:
        for key, name, doc in (
            ("cpu_percent", "system_cpu_percent", "Machine CPU use since the previous sample, 0-100."),
            ("memory_percent", "system_memory_percent", "Machine memory in use, 0-100."),
            ("memory_used_bytes", "system_memory_used_bytes", "Machine memory in use (total - available)."),
            ("memory_total_bytes", "system_memory_total_bytes", "Machine memory installed."),
            ("cpu_count", "system_cpu_count", "Logical CPUs."),
        ):
            yield GaugeMetricFamily(PREFIX + name, doc, value=system[key])
    cpu = GaugeMetricFamily(
        PREFIX + "process_cpu_percent",
        "CPU use since the previous sample, per core (100 = one core); trees include their child processes.",
        labels=["process"],
    )
    rss = GaugeMetricFamily(
        PREFIX + "process_resident_memory_bytes",
        "Resident memory; trees include their child processes.",
        labels=["process"],
    )
    count = GaugeMetricFamily(PREFIX + "process_count", "Processes measured under this name.", labels=["process"])
    for name, proc in resources.items():
        if name == "system" or not isinstance(proc, Mapping):
            continue  # a tree whose process is gone is None: no sample rather than a zero
        cpu.add_metric([name], proc["cpu_percent"])
        rss.add_metric([name], proc["rss_bytes"])
        count.add_metric([name], proc.get("processes", 1))
    yield from (cpu, rss, count)
