"""A tuning run's finding in one sentence: the fastest by how much, or no measurable difference (fewest wins),
with the right grammar for every count."""

from __future__ import annotations

import pytest

from core.tuning.verdict import best_of, summary, within_noise


@pytest.mark.parametrize(
    ("results", "said", "best"),
    [
        ([(1, 10.0)], "1 thread ran at 10.0 tokens/s (the only thread count measured).", 1),
        (
            [(1, 10.1), (2, 10.3)],
            "No measurable difference between 1 and 2 threads (10.1 to 10.3 tokens/s): 1 thread "
            "is best, as it leaves more of the processor free.",
            1,
        ),
        (
            [(2, 10.3), (4, 10.0), (6, 10.2)],
            "No measurable difference between 2, 4 and 6 threads (10.0 to 10.3 "
            "tokens/s): 2 threads is best, as it leaves more of the processor free.",
            2,
        ),
        ([(1, 5.0), (6, 17.6)], "Fastest: 6 threads at 17.6 tokens/s, 252 % faster than 1 thread.", 6),
        ([(1, 8.0), (2, 12.0), (4, 12.0)], "Fastest: 2 threads at 12.0 tokens/s, 50 % faster than 1 thread.", 2),
    ],
)
def test_the_verdict_is_said_in_plain_words(results: list[tuple[int, float]], said: str, best: int) -> None:
    assert summary(results) == said
    assert best_of(results) == best
    assert "1 threads" not in summary(results)


def test_noise_is_a_few_percent_of_the_fastest() -> None:
    assert within_noise([(1, 100.0), (2, 96.0)]) and not within_noise([(1, 100.0), (2, 90.0)])
    assert not within_noise([(1, 100.0)])
