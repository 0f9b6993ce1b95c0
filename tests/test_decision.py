"""The cache decision, as a table: the request's facts and the entry found give hit, miss or bypass."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.cache.request.controls import Controls, ControlsError, parse_cache_control, parse_controls
from core.cache.request.decision import (
    CONVERTED,
    HIT,
    MISS,
    MISS_NO_USAGE,
    MISS_OTHER_MODE,
    NO_STORE,
    NOT_KEYED,
    PAUSED,
    REFRESH,
    SHARED,
    TOO_OLD,
    UNCACHED,
    Outcome,
    Request,
    decide,
)


@dataclass(frozen=True)
class Found:
    streamed: bool
    created: float = 1000.0
    route: str = "/api/chat"
    chunks: list[bytes] = field(default_factory=list)


FINISH = b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
USAGE = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
OPENAI_STREAM = Found(streamed=True, route="/v1/chat/completions", chunks=[FINISH, USAGE, b"data: [DONE]\n\n"])
OPENAI_STREAM_NO_USAGE = Found(streamed=True, route="/v1/chat/completions", chunks=[FINISH, b"data: [DONE]\n\n"])


STREAMED = Request("k", "llama3.2:latest", streamed=True)
WHOLE = Request("k", "llama3.2:latest", streamed=False)
STREAMED_WITH_USAGE = Request("k", "llama3.2:latest", streamed=True, usage=True)


@pytest.mark.parametrize(
    ("request_", "found", "caching", "expected"),
    [
        (STREAMED, Found(streamed=True), True, HIT),
        (WHOLE, Found(streamed=False), True, HIT),
        (STREAMED, None, True, MISS),
        (STREAMED, Found(streamed=False), True, CONVERTED),  # one entry serves both modes
        (WHOLE, Found(streamed=True), True, CONVERTED),
        (STREAMED, Found(streamed=False, route="/v1/chat/completions"), True, CONVERTED),
        (WHOLE, OPENAI_STREAM, True, CONVERTED),
        (WHOLE, OPENAI_STREAM_NO_USAGE, True, MISS_OTHER_MODE),  # no usage to give a whole answer: replaced
        (STREAMED_WITH_USAGE, OPENAI_STREAM, True, HIT),
        (STREAMED, OPENAI_STREAM, True, HIT),  # its usage is left out of the replay
        (STREAMED_WITH_USAGE, OPENAI_STREAM_NO_USAGE, True, MISS_NO_USAGE),  # no usage to give: replaced
        (STREAMED_WITH_USAGE, Found(streamed=False, route="/v1/chat/completions"), True, CONVERTED),
        (None, None, True, NOT_KEYED),
        (STREAMED, Found(streamed=True), False, PAUSED),
        (None, None, False, NOT_KEYED),
    ],
)
def test_the_decision_table(request_: Request | None, found: Found | None, caching: bool, expected: object) -> None:
    assert decide(request_, found, caching=caching) == expected


def test_only_a_miss_or_a_refresh_records_and_each_outcome_names_its_header() -> None:
    assert MISS.records and MISS_OTHER_MODE.records and MISS_NO_USAGE.records and REFRESH.records and TOO_OLD.records
    assert not any(d.records for d in (HIT, CONVERTED, NOT_KEYED, PAUSED, NO_STORE, UNCACHED, SHARED))
    assert CONVERTED.outcome is Outcome.HIT and CONVERTED.converts and not HIT.converts
    assert [o.header for o in Outcome] == [b"HIT", b"MISS", b"BYPASS", b"REFRESH", b"MISS", b"SHARED", b"PARTIAL"]
    assert all(d.reason for d in (HIT, MISS, MISS_OTHER_MODE, NOT_KEYED, PAUSED, NO_STORE, REFRESH, TOO_OLD, UNCACHED))


FRESH, OLD = Found(streamed=False, created=1000.0), Found(streamed=False, created=900.0)


@pytest.mark.parametrize(
    ("controls", "found", "expected"),
    [
        (Controls(), FRESH, HIT),
        (Controls(no_store=True), FRESH, NO_STORE),
        (Controls(no_cache=True), FRESH, REFRESH),
        (Controls(no_cache=True), None, REFRESH),
        (Controls(max_age_s=60), FRESH, HIT),  # stored 50 s ago
        (Controls(max_age_s=60), OLD, TOO_OLD),  # stored 150 s ago
        (Controls(only_if_cached=True), FRESH, HIT),
        (Controls(only_if_cached=True), None, UNCACHED),
        (Controls(only_if_cached=True, max_age_s=60), OLD, UNCACHED),
        (Controls(only_if_cached=True), Found(streamed=True), CONVERTED),
        (Controls(only_if_cached=True), OPENAI_STREAM_NO_USAGE, UNCACHED),
        (Controls(only_if_cached=True, no_cache=True), FRESH, UNCACHED),
        (Controls(no_store=True, only_if_cached=True), None, NO_STORE),
    ],
)
def test_the_clients_controls(controls: Controls, found: Found | None, expected: object) -> None:
    assert decide(WHOLE, found, controls=controls, now=1050.0) is expected


@pytest.mark.parametrize(
    ("controls", "found", "expected"),
    [
        (Controls(), None, SHARED),  # it would be a miss: it follows the call under way instead
        (Controls(), FRESH, HIT),  # a stored answer is faster still
        (Controls(no_cache=True), FRESH, SHARED),  # the answer in flight is as fresh as a new one
        (Controls(max_age_s=60), OLD, SHARED),
        (Controls(only_if_cached=True), None, SHARED),  # following calls nothing
        (Controls(no_store=True), None, NO_STORE),  # passes through on its own, as asked
    ],
)
def test_a_request_whose_twin_is_in_flight_shares_its_answer(
    controls: Controls, found: Found | None, expected: object
) -> None:
    assert decide(WHOLE, found, controls=controls, now=1050.0, flying=True) == expected
    assert decide(WHOLE, found, caching=False, controls=controls, now=1050.0, flying=True) == PAUSED


def test_pausing_wins_over_the_clients_controls() -> None:
    assert decide(WHOLE, None, caching=False, controls=Controls(only_if_cached=True)) is PAUSED


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Controls()),
        (b"", Controls()),
        (b"no-cache", Controls(no_cache=True)),
        (b"No-Store", Controls(no_store=True)),
        (b"max-age=3600", Controls(max_age_s=3600)),
        (b'max-age="60", max-age=30', Controls(max_age_s=30)),
        (b"only-if-cached, max-age=0", Controls(max_age_s=0, only_if_cached=True)),
        (b"max-stale=10, no-transform, x-extension", Controls()),  # not ours to act on: left alone
    ],
)
def test_the_header_parser_reads_what_clients_send(header: bytes | None, expected: Controls) -> None:
    assert parse_cache_control(header) == expected


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (b"max-age", "max-age takes a whole number of seconds"),
        (b"max-age=soon", "max-age takes a whole number of seconds"),
        (b"max-age=-5", "max-age takes a whole number of seconds"),
        (b"no-store=yes", "no-store takes no value"),
        ("no-cache, \u00e9t\u00e9".encode(), "it is not ASCII"),
    ],
)
def test_a_bad_header_is_refused_with_what_it_accepts(header: bytes, says: str) -> None:
    with pytest.raises(ControlsError) as refused:
        parse_cache_control(header)
    assert refused.value.header == "Cache-Control" and says in str(refused.value)
    assert "no-cache, no-store, max-age=SECONDS" in str(refused.value)


@pytest.mark.parametrize(
    ("replay", "paced"), [(None, False), (b"instant", False), (b"paced", True), (b" Paced ", True)]
)
def test_x_cache_replay_asks_for_the_recorded_pace(replay: bytes | None, paced: bool) -> None:
    assert parse_controls(b"max-age=60", None, replay) == Controls(max_age_s=60, paced=paced)
    assert parse_controls(None, b"90", replay) == Controls(ttl_s=90, paced=paced)


@pytest.mark.parametrize("replay", [b"slow", b"", b"paced, instant", b"1"])
def test_a_bad_x_cache_replay_names_the_header_and_what_it_accepts(replay: bytes) -> None:
    with pytest.raises(ControlsError, match=r"bad X-Cache-Replay header: it takes paced .* or instant") as refused:
        parse_controls(None, None, replay)
    assert refused.value.header == "X-Cache-Replay"
