"""Request statistics: what the proxy did, counted cheaply on the hit path and persisted across restarts.

One `Stats` object lives in the engine process. The proxy calls `Stats.record` once per answered request;
`/-/stats`, `/-/events` and `/-/metrics` read `Stats.snapshot`. All calls come from the one asyncio event
loop thread, so nothing here takes a lock: `record` is a handful of int/float additions and a deque append
(a few microseconds), because it sits inside the ~100 us budget of a cache hit.

What persists (the JSON file at ``path``): totals, per-model, per-route and per-client counters,
``since``, and today's counters (``today``: the local calendar day; a new day starts them at zero, also
when the file was written on an earlier day).
What starts fresh with each process: the per-second rate ring (15 minutes) and the latency windows.

Latency is kept only for the outcomes the proxy times (`TIMED_OUTCOMES`): the proxy does not time what it passes
through untouched, so a bypass has no latency, and the snapshot and metrics show none for it rather than zeros. A
request recorded with ``latency_s=None`` (not measured) is counted without a latency sample.

Model ``None`` (requests that name no model, e.g. ``/api/tags``) is counted in the totals and per route,
and left out of ``by_model``, so the per-model table lists only real models. Clients are named by
`core.observe.clients` and counted under ``clients`` (a request recorded without one is left out there).
Distinct model, route and client names are capped at `MAX_KEYS` each; further names are counted under
`OTHER_KEY`, so a client sending random names cannot grow memory or the metrics page without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from core.config.private import write_private
from core.observe.tally import (
    MAX_KEYS,
    OTHER_KEY,
    OUTCOME_FIELDS,
    OUTCOMES,
    Outcome,
    Tally,
    hit_rate,
    tallies_from_json,
    tally_for,
)

__all__ = ["MAX_KEYS", "OTHER_KEY", "OUTCOME_FIELDS", "OUTCOMES", "Outcome", "Stats"]

log = logging.getLogger(__name__)

#: Outcomes whose latency is not measured: the proxy does not time what it passes through untouched.
UNTIMED_OUTCOMES: frozenset[str] = frozenset({"bypass"})
TIMED_OUTCOMES: tuple[str, ...] = tuple(name for name in OUTCOMES if name not in UNTIMED_OUTCOMES)

RATE_WINDOWS_S: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900}  # window name -> length in seconds
RING_SECONDS: int = max(RATE_WINDOWS_S.values())  # per-second buckets kept for the rolling rates
LATENCY_SAMPLES: int = 10_000  # most recent latencies kept per outcome for percentiles
PERCENTILES: tuple[int, ...] = (50, 95, 99)
FILE_FORMAT: int = 1

_INDEX: dict[str, int] = {name: i for i, name in enumerate(OUTCOMES)}
_N = len(OUTCOMES)
_HIT, _MISS, _SHARED = _INDEX["hit"], _INDEX["miss"], _INDEX["shared"]
_NEVER = -(1 << 62)  # ring stamp of a bucket that has never been used
_TIMED = tuple(name in TIMED_OUTCOMES for name in OUTCOMES)  # indexed like OUTCOMES


def _percentiles(samples: deque[float]) -> dict[str, float | int | None]:
    """Nearest-rank percentiles of latencies in seconds, returned in milliseconds (None when empty)."""
    ordered = sorted(samples)
    n = len(ordered)
    out: dict[str, float | int | None] = {}
    for q in PERCENTILES:
        # Nearest rank: the smallest sample with at least q% of samples at or below it (integer maths).
        out[f"p{q}"] = ordered[max(0, -(-q * n // 100) - 1)] * 1000.0 if n else None
    out["count"] = n
    return out


class Stats:
    """Counters, rolling rates and latency percentiles of the proxy's requests.

    Args:
        path: JSON file where totals persist, or None to keep them in memory only. Loaded here when
            present; a corrupt or unreadable file is moved aside as ``<name>.corrupt`` (a warning is
            logged) and stats start from zero.
        clock: monotonic seconds, for rates and uptime (tests inject a fake).
        wall: Unix seconds, for ``since``.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self.reset()
        if path is not None:
            self._load(path)

    @property
    def path(self) -> Path | None:
        """The stats file, or None when totals are not persisted."""
        return self._path

    def reset(self) -> None:
        """Zero everything (totals, per model, route and client, rates, latencies) and restart ``since`` now.

        The file keeps the old totals until the next `save`.
        """
        self._total = Tally()
        self._by_model: dict[str, Tally] = {}
        self._by_route: dict[str, Tally] = {}
        self._by_client: dict[str, Tally] = {}
        self._by_key: dict[str, Tally] = {}
        self._since = datetime.fromtimestamp(self._wall(), tz=UTC).isoformat(timespec="seconds")
        self._ring_sec: list[int] = [_NEVER] * RING_SECONDS  # second stamped on each bucket
        self._ring: list[list[int]] = [[0] * _N for _ in range(RING_SECONDS)]  # per-outcome counts
        self._latency: list[deque[float]] = [deque(maxlen=LATENCY_SAMPLES) for _ in OUTCOMES]
        self._new_day()

    def _new_day(self) -> None:
        """Today's counters start at zero; the next start is local midnight (a wall-clock comparison per
        request is all the hit path pays for it)."""
        today = datetime.fromtimestamp(self._wall()).date()
        self._today, self._day = Tally(), today.isoformat()
        self._day_ends = datetime.combine(today + timedelta(days=1), clock_time()).timestamp()

    def record(
        self,
        outcome: Outcome,
        *,
        route: str,
        model: str | None,
        latency_s: float | None,
        saved_s: float = 0.0,
        saved_tokens: int = 0,
        client: str | None = None,
        key: str | None = None,
    ) -> None:
        """Count one answered request.

        Args:
            outcome: what the proxy did; see `Outcome`.
            route: the API route, e.g. ``"/api/chat"`` (a route name, not a raw path with ids in it).
            model: the requested model, or None when the request names none (left out of ``by_model``).
            latency_s: seconds the proxy took to answer the client (for a miss: until the last byte), or
                None when not measured; either way a bypass keeps none (`UNTIMED_OUTCOMES`).
            saved_s: on a hit, the upstream seconds the original answer took.
            saved_tokens: on a hit, the prompt + completion tokens the original answer cost.
            client: the client's name (`core.observe.clients`), or None when not known (left out of
                ``clients``).
            key: the name of the API key the request came with on a shared proxy, or None (left out of ``keys``).

        Raises:
            ValueError: ``outcome`` is not one of `OUTCOMES`.
        """
        try:
            i = _INDEX[outcome]
        except KeyError:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}") from None
        sec = int(self._clock())
        slot = sec % RING_SECONDS
        if self._ring_sec[slot] != sec:  # bucket last used a ring-length ago (or never): reuse it
            self._ring_sec[slot] = sec
            self._ring[slot] = [0] * _N
        self._ring[slot][i] += 1
        if latency_s is not None and _TIMED[i]:
            self._latency[i].append(latency_s)
        self._total.add(i, saved_s, saved_tokens)
        if self._wall() >= self._day_ends:
            self._new_day()
        self._today.add(i, saved_s, saved_tokens)
        tally_for(self._by_route, route).add(i, saved_s, saved_tokens)
        if model is not None:
            tally_for(self._by_model, model).add(i, saved_s, saved_tokens)
        if client is not None:
            tally_for(self._by_client, client).add(i, saved_s, saved_tokens)
        if key is not None:
            tally_for(self._by_key, key).add(i, saved_s, saved_tokens)

    def snapshot(self, *, entries: int | None = None, bytes_: int | None = None) -> dict[str, Any]:
        """Everything the dashboard, ``ollacache stats`` and ``/-/metrics`` show, as JSON-ready data.

        Args:
            entries: number of entries in the store (passed through as ``store.entries``).
            bytes_: size of the store in bytes (passed through as ``store.bytes``).

        Rates are requests per second over the last 1, 5 and 15 minutes (or over the uptime, when the
        process is younger than the window). Latency percentiles are in milliseconds over the most
        recent `LATENCY_SAMPLES` timed requests of each outcome in `TIMED_OUTCOMES` (bypasses have none).
        Costs a sort of those samples: call it about once a second, not per request.
        """
        now = self._clock()
        if self._wall() >= self._day_ends:
            self._new_day()
        return {
            "totals": self._total.to_json(),
            "today": {"date": self._day, **self._today.to_json()},
            "rates": self._rates(now),
            "latency_ms": {
                name: _percentiles(samples)
                for name, samples, timed in zip(OUTCOMES, self._latency, _TIMED, strict=True)
                if timed
            },
            "by_model": {model: tally.to_json() for model, tally in self._by_model.items()},
            "by_route": {route: tally.to_json() for route, tally in self._by_route.items()},
            "clients": {client: tally.to_json() for client, tally in self._by_client.items()},
            "keys": {key: tally.to_json() for key, tally in self._by_key.items()},
            "store": {"entries": entries, "bytes": bytes_},
            "since": self._since,
            "uptime_s": now - self._started,
        }

    def _rates(self, now: float) -> dict[str, dict[str, float]]:
        now_sec = int(now)
        sums = {name: [0] * _N for name in RATE_WINDOWS_S}
        for stamp, counts in zip(self._ring_sec, self._ring, strict=False):
            age = now_sec - stamp  # 0 for the current (partial) second
            if not 0 <= age < RING_SECONDS:
                continue
            for name, window_s in RATE_WINDOWS_S.items():
                if age < window_s:
                    window_sums = sums[name]
                    for i in range(_N):
                        window_sums[i] += counts[i]
        uptime_s = max(1.0, now - self._started)
        out: dict[str, dict[str, float]] = {}
        for name, window_s in RATE_WINDOWS_S.items():
            span_s = min(float(window_s), uptime_s)
            counts = sums[name]
            rates = {"requests_per_s": sum(counts) / span_s}
            for outcome, count in zip(OUTCOMES, counts, strict=False):
                rates[f"{OUTCOME_FIELDS[outcome]}_per_s"] = count / span_s
            rates["hit_rate"] = hit_rate(counts[_HIT], counts[_MISS], counts[_SHARED])
            out[name] = rates
        return out

    def save(self) -> None:
        """Write totals to the file atomically (temp file + ``os.replace``, mode 0600); no-op without a path.

        Blocks for an fsync; from the event loop prefer `save_async`.

        Raises:
            OSError: the file or its directory cannot be written.
        """
        if self._path is not None:
            write_private(self._path, self._encode())

    async def save_async(self) -> None:
        """Like `save`, but encodes on the loop thread and writes in a worker thread (no fsync on the loop)."""
        if self._path is not None:
            await asyncio.to_thread(write_private, self._path, self._encode())

    def _encode(self) -> bytes:
        state = {
            "format": FILE_FORMAT,
            "since": self._since,
            "totals": self._total.to_json(),
            "today": {"date": self._day, **self._today.to_json()},
            "by_model": {model: tally.to_json() for model, tally in self._by_model.items()},
            "by_route": {route: tally.to_json() for route, tally in self._by_route.items()},
            "clients": {client: tally.to_json() for client, tally in self._by_client.items()},
            "keys": {key: tally.to_json() for key, tally in self._by_key.items()},
        }
        return json.dumps(state, indent=1, sort_keys=True).encode()

    def _load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._set_aside(path, exc)
            return
        try:
            state = json.loads(raw)
            if not isinstance(state, dict):
                raise ValueError("top level is not an object")
            since = state.get("since")
            if not isinstance(since, str):
                raise ValueError("missing 'since'")
            datetime.fromisoformat(since)
            total = Tally.from_json(state.get("totals"))
            by_model = tallies_from_json(state.get("by_model", {}))
            by_route = tallies_from_json(state.get("by_route", {}))
            by_client = tallies_from_json(state.get("clients", {}))  # absent in files written before
            by_key = tallies_from_json(state.get("keys", {}))  # absent in files written before
            today = state.get("today") or {}  # absent in files written before
            if not isinstance(today, dict):
                raise ValueError("'today' is not an object")
            kept_today = Tally.from_json(today) if today.get("date") == self._day else None
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            self._set_aside(path, exc)
            return
        self._since, self._total, self._by_model, self._by_route = since, total, by_model, by_route
        self._by_client, self._by_key = by_client, by_key
        if kept_today is not None:
            self._today = kept_today

    @staticmethod
    def _set_aside(path: Path, reason: Exception) -> None:
        aside = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, aside)
        except OSError as exc:
            log.warning(
                "stats file %s is unusable (%s) and could not be moved aside (%s); starting from zero",
                path,
                reason,
                exc,
            )
        else:
            log.warning("stats file %s is unusable (%s); moved it to %s and started from zero", path, reason, aside)
