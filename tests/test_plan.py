"""The plan of a request to the proxy port, as a table: the facts of a request give what the proxy does with it
(answer, follow, record, forward, refuse), its X-Cache header, and the refusal or lifetime it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from core.cache.request.controls import Controls
from core.cache.request.decision import Outcome, Policy, Request
from core.cache.request.plan import (
    ANSWER,
    ANSWER_CONVERTED,
    FOLLOW,
    FORWARD_CHANGING_MODELS,
    FORWARD_PASSING,
    OFFLINE_MISS,
    OFFLINE_PASS_THROUGH,
    REFUSE_OFFLINE_PASS_THROUGH,
    Act,
    plan,
    plan_passing,
)


@dataclass(frozen=True)
class Found:
    streamed: bool = False
    created: float = 1000.0
    route: str = "/api/chat"
    chunks: list[bytes] = field(default_factory=list)


WHOLE = Request("k", "llama3.2:latest", streamed=False)
STREAMED = Request("k", "llama3.2:latest", streamed=True)
SAMPLED = Request("k", "llama3.2:latest", streamed=False, sampled=True)
STORED, STORED_STREAM = Found(), Found(streamed=True)
NO_CACHE, NO_STORE = Controls(no_cache=True), Controls(no_store=True)
ONLY_IF_CACHED, TTL = Controls(only_if_cached=True), Controls(ttl_s=60.0)
DETERMINISTIC = Policy(sampling="deterministic")

# (request, found, facts) -> (act, X-Cache, status)
TABLE: list[tuple[Request | None, Found | None, dict[str, Any], Act, Outcome | None, int]] = [
    (WHOLE, STORED, {}, Act.ANSWER, Outcome.HIT, 200),
    (STREAMED, STORED, {}, Act.ANSWER, Outcome.HIT, 200),  # converted: one entry serves both modes
    (WHOLE, None, {}, Act.RECORD, Outcome.MISS, 200),
    (WHOLE, None, {"flying": True}, Act.FOLLOW, Outcome.SHARED, 200),
    (WHOLE, STORED, {"flying": True}, Act.ANSWER, Outcome.HIT, 200),  # a stored answer beats waiting
    (WHOLE, STORED, {"controls": NO_CACHE}, Act.RECORD, Outcome.REFRESH, 200),
    (WHOLE, STORED, {"controls": NO_STORE}, Act.FORWARD, Outcome.BYPASS, 200),
    (WHOLE, None, {"controls": ONLY_IF_CACHED}, Act.REFUSE, Outcome.UNCACHED, 504),
    (WHOLE, None, {"controls": ONLY_IF_CACHED, "flying": True}, Act.FOLLOW, Outcome.SHARED, 200),
    (WHOLE, STORED, {"caching": False}, Act.FORWARD, Outcome.BYPASS, 200),  # paused
    (None, None, {}, Act.FORWARD, Outcome.BYPASS, 200),  # not keyed
    (SAMPLED, None, {"policy": DETERMINISTIC}, Act.FORWARD, Outcome.BYPASS, 200),
    (WHOLE, STORED, {"offline": True}, Act.ANSWER, Outcome.HIT, 200),
    (WHOLE, None, {"offline": True}, Act.REFUSE, Outcome.MISS, 504),
    (WHOLE, None, {"offline": True, "flying": True}, Act.REFUSE, Outcome.MISS, 504),
    (None, None, {"offline": True}, Act.REFUSE, Outcome.MISS, 504),
    (WHOLE, STORED, {"controls_error": "bad"}, Act.REFUSE, None, 400),
]


@pytest.mark.parametrize(("request_", "found", "facts", "act", "outcome", "status"), TABLE)
def test_the_plan_table(
    request_: Request | None, found: Found | None, facts: dict[str, Any], act: Act, outcome: Outcome | None, status: int
) -> None:
    chosen = plan(request_, found, **facts)
    assert (chosen.act, chosen.outcome, chosen.status) == (act, outcome, status)
    assert chosen.reason
    assert bool(chosen.message) == (act is Act.REFUSE)  # a refusal says why, in the route's own format


def test_a_hit_is_one_of_two_plans_made_once() -> None:
    """The hit path builds nothing: the same two plans answer every hit."""
    assert plan(WHOLE, STORED) is ANSWER and plan(STREAMED, STORED) is ANSWER_CONVERTED
    assert plan(WHOLE, STORED_STREAM) is ANSWER_CONVERTED
    assert plan(WHOLE, None, flying=True) is FOLLOW


def test_refusals_say_what_the_client_can_do() -> None:
    assert plan(WHOLE, None, offline=True).message == OFFLINE_MISS
    assert "only-if-cached" in plan(WHOLE, None, controls=ONLY_IF_CACHED).message
    assert plan(WHOLE, None, controls_error="ollacache: bad Cache-Control").message == "ollacache: bad Cache-Control"


def test_the_tuned_threads_go_only_into_what_ollama_runs() -> None:
    assert plan(WHOLE, None, inject=True).threads  # a miss on a native route
    assert plan(WHOLE, STORED, inject=True, caching=False).threads  # pausing does not change what Ollama runs
    assert not plan(WHOLE, None, inject=True, api="openai").threads  # its /v1 routes take no options
    assert not plan(None, None, inject=True).threads  # not a JSON request: sent as it came
    assert not plan(WHOLE, None).threads  # injection off


def test_a_recorded_answer_lives_as_the_client_or_the_setting_says() -> None:
    assert plan(WHOLE, None, ttl_s=3600.0).ttl_s == 3600.0
    assert plan(WHOLE, None, controls=TTL, ttl_s=3600.0).ttl_s == 60.0
    assert plan(WHOLE, None).ttl_s == 0.0  # forever


def test_other_paths_are_relayed_and_refused_only_offline() -> None:
    assert plan_passing() is FORWARD_PASSING and FORWARD_PASSING.outcome is None
    assert plan_passing(changes_models=True) is FORWARD_CHANGING_MODELS and FORWARD_CHANGING_MODELS.refresh_models
    assert plan_passing(offline=True, changes_models=True) is REFUSE_OFFLINE_PASS_THROUGH
    assert REFUSE_OFFLINE_PASS_THROUGH.status == 504 and REFUSE_OFFLINE_PASS_THROUGH.message == OFFLINE_PASS_THROUGH
