"""Counters of one scope of traffic (all of it, one model, one route, one client, one day): requests per
outcome, the upstream seconds and the tokens the hits saved, and how they are written to and read from the
stats file. Distinct names per table are capped at `MAX_KEYS`; further names share `OTHER_KEY`, so a client
sending random names cannot grow memory or the metrics page without bound.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

Outcome = Literal["hit", "miss", "bypass", "error", "shared"]
#: Counter name of each outcome in snapshots and in the stats file. To add an outcome, add it to
#: `Outcome` and give it a row here; snapshots, rates, latency windows and metrics pick it up (a latency
#: window only when it is timed, see `core.observe.stats.UNTIMED_OUTCOMES`).
OUTCOME_FIELDS: dict[str, str] = {
    "hit": "hits",
    "miss": "misses",
    "bypass": "bypass",
    "error": "errors",
    "shared": "shared",
}
OUTCOMES: tuple[str, ...] = get_args(Outcome)
if set(OUTCOMES) != set(OUTCOME_FIELDS):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("Outcome and OUTCOME_FIELDS disagree")

MAX_KEYS: int = 1_000  # distinct model names (and, separately, route and client names) tracked individually
OTHER_KEY: str = "(other)"

_N = len(OUTCOMES)
_HIT, _MISS, _SHARED = OUTCOMES.index("hit"), OUTCOMES.index("miss"), OUTCOMES.index("shared")


def hit_rate(hits: int, misses: int, shared: int = 0) -> float:
    """Fraction of cacheable requests answered without an upstream call of their own: from the cache or
    shared with an identical request in flight, (hits + shared) / (hits + shared + misses); 0.0 when none."""
    saved = hits + shared
    return saved / (saved + misses) if saved + misses else 0.0


class Tally:
    """Counters for one scope (all traffic, one model, one route or one client)."""

    __slots__ = ("counts", "saved_s", "saved_tokens")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * _N  # requests per outcome, indexed like OUTCOMES
        self.saved_s: float = 0.0  # upstream seconds saved by hits
        self.saved_tokens: int = 0  # prompt + completion tokens saved by hits

    def add(self, index: int, saved_s: float, saved_tokens: int) -> None:
        self.counts[index] += 1
        self.saved_s += saved_s
        self.saved_tokens += saved_tokens

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": sum(self.counts)}
        for name, count in zip(OUTCOMES, self.counts, strict=False):
            out[OUTCOME_FIELDS[name]] = count
        out["hit_rate"] = hit_rate(self.counts[_HIT], self.counts[_MISS], self.counts[_SHARED])
        out["time_saved_s"] = self.saved_s
        out["tokens_saved"] = self.saved_tokens
        return out

    @classmethod
    def from_json(cls, data: Any) -> Tally:
        """Rebuild from `to_json` output; missing counters (an outcome added since) read as 0.

        Raises ValueError when a field has the wrong type or a negative value.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        tally = cls()
        for i, name in enumerate(OUTCOMES):
            tally.counts[i] = count_of(data.get(OUTCOME_FIELDS[name], 0))
        tally.saved_tokens = count_of(data.get("tokens_saved", 0))
        saved_s = data.get("time_saved_s", 0.0)
        if isinstance(saved_s, bool) or not isinstance(saved_s, (int, float)) or not 0 <= saved_s < math.inf:
            raise ValueError(f"bad time_saved_s {saved_s!r}")
        tally.saved_s = float(saved_s)
        return tally


def count_of(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"bad counter {value!r}")
    return value


def tally_for(table: dict[str, Tally], key: str) -> Tally:
    """The tally for ``key``, created on first use; past `MAX_KEYS` names, the shared `OTHER_KEY` one."""
    tally = table.get(key)
    if tally is None:
        if len(table) >= MAX_KEYS:
            key = OTHER_KEY
            tally = table.get(key)
        if tally is None:
            tally = table[key] = Tally()
    return tally


def tallies_from_json(data: Any) -> dict[str, Tally]:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    return {str(key): Tally.from_json(value) for key, value in data.items()}
