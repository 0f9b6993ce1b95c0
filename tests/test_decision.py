"""The cache decision, as a table: the request's facts and the entry found give hit, miss or bypass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.cache.decision import HIT, MISS, MISS_OTHER_MODE, NOT_KEYED, PAUSED, Outcome, Request, decide


@dataclass(frozen=True)
class Found:
    streamed: bool


STREAMED = Request("k", "llama3.2:latest", streamed=True)
WHOLE = Request("k", "llama3.2:latest", streamed=False)


@pytest.mark.parametrize(("request_", "found", "caching", "expected"), [
    (STREAMED, Found(streamed=True), True, HIT),
    (WHOLE, Found(streamed=False), True, HIT),
    (STREAMED, None, True, MISS),
    (STREAMED, Found(streamed=False), True, MISS_OTHER_MODE),
    (WHOLE, Found(streamed=True), True, MISS_OTHER_MODE),
    (None, None, True, NOT_KEYED),
    (STREAMED, Found(streamed=True), False, PAUSED),
    (None, None, False, NOT_KEYED),
])
def test_the_decision_table(request_: Request | None, found: Found | None, caching: bool, expected: object) -> None:
    assert decide(request_, found, caching=caching) == expected


def test_only_a_miss_records_and_each_outcome_names_its_header() -> None:
    assert MISS.records and MISS_OTHER_MODE.records
    assert not HIT.records and not NOT_KEYED.records and not PAUSED.records
    assert [o.header for o in Outcome] == [b"HIT", b"MISS", b"BYPASS"]
    assert all(d.reason for d in (HIT, MISS, MISS_OTHER_MODE, NOT_KEYED, PAUSED))
