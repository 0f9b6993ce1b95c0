"""Turning a ``/-/stats`` snapshot into the text ``ollacache stats`` prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.units import human_bytes, human_seconds


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f} us" if value < 1 else f"{value:,.1f} ms")


def format_stats(snapshot: Mapping[str, Any], url: str) -> str:
    """A short, aligned summary of a stats snapshot."""
    totals = snapshot["totals"]
    store = snapshot.get("store", {})
    latency = snapshot.get("latency_ms", {})
    hit, miss = latency.get("hit", {}), latency.get("miss", {})
    lines = [
        f"Ollacache at {url}: up {human_seconds(snapshot.get('uptime_s', 0))}, "
        f"totals since {snapshot.get('since', '?')}",
        f"  requests  {totals['requests']:,} (hits {totals['hits']:,}, misses {totals['misses']:,}, "
        f"bypass {totals['bypass']:,}, errors {totals['errors']:,})",
        f"  hit rate  {totals['hit_rate'] * 100:.1f} %",
        f"  saved     {human_seconds(totals['time_saved_s'])} of model time, {totals['tokens_saved']:,} tokens",
        f"  latency   hit p50 {_ms(hit.get('p50'))}, p99 {_ms(hit.get('p99'))}; miss p50 {_ms(miss.get('p50'))}",
        f"  store     {store.get('entries') if store.get('entries') is not None else '?'} entries,"
        f" {human_bytes(store.get('bytes'))}",
    ]
    by_model = snapshot.get("by_model") or {}
    if by_model:
        lines.append("  by model:")
        width = max(len(name) for name in by_model)
        for name, tally in sorted(by_model.items(), key=lambda item: -item[1]["requests"]):
            lines.append(
                f"    {name:<{width}}  {tally['requests']:>8,} requests  {tally['hit_rate'] * 100:5.1f} % hits"
                f"  {human_seconds(tally['time_saved_s'])} saved"
            )
    return "\n".join(lines)
