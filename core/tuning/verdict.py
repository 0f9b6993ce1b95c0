"""What a tuning run found, in one sentence for people: the fastest thread count and by how much, or, when the
speeds are within noise, that there is no measurable difference (then the fewest threads are kept: the same
speed for less of the processor). Pure: the CLI, the tray's notification and the settings window say the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.units import listing, plural

NOISE = 0.05  # speeds within 5 % of each other: a machine doing anything else moves a run by that much


def _speed(tokens_per_s: float) -> str:
    return f"{tokens_per_s:,.1f}"


def _counts(counts: Sequence[int]) -> str:
    """The thread counts in words: "1 and 2 threads", "1, 2 and 4 threads"."""
    names = [f"{count:,}" for count in sorted(counts)]
    return f"{listing(names)} thread{'s' if len(names) > 1 or sorted(counts)[0] != 1 else ''}"


def _fastest(results: Sequence[tuple[int, float]]) -> tuple[int, float]:
    """The fastest (thread count, speed); of equal speeds, the fewest threads."""
    return min(results, key=lambda row: (-row[1], row[0]))


def within_noise(results: Sequence[tuple[int, float]]) -> bool:
    """Whether every thread count ran as fast as the fastest, give or take :data:`NOISE`."""
    speeds = [speed for _, speed in results]
    return len(results) > 1 and min(speeds) >= max(speeds) * (1 - NOISE)


def summary(results: Sequence[tuple[int, float]]) -> str:
    """One sentence for ``results``: (thread count, tokens per second) of each candidate measured."""
    if not results:
        return "Nothing was measured."
    best = _fastest(results)
    threads = plural(best[0], "thread")
    if len(results) == 1:
        return f"{threads} ran at {_speed(best[1])} tokens/s (the only thread count measured)."
    if within_noise(results):
        fewest = min(count for count, _ in results)
        return (
            f"No measurable difference between {_counts([count for count, _ in results])} "
            f"({_speed(min(s for _, s in results))} to {_speed(max(s for _, s in results))} tokens/s): "
            f"{plural(fewest, 'thread')} is best, as it leaves more of the processor free."
        )
    slowest = min(results, key=lambda row: (row[1], row[0]))
    gain = (best[1] / slowest[1] - 1) * 100 if slowest[1] > 0 else 0.0
    return f"Fastest: {threads} at {_speed(best[1])} tokens/s, {gain:.0f} % faster than {plural(slowest[0], 'thread')}."


def best_of(results: Sequence[tuple[int, float]]) -> int:
    """The thread count to use: the fastest, or the fewest when the speeds are within noise."""
    if within_noise(results):
        return min(count for count, _ in results)
    return _fastest(results)[0]
