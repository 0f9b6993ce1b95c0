"""The sampling policy, pure: which requests are sampled, which the cache takes under ``cache.sampling``, and
which answer of a bucket (``cache.bucket``) answers or records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from core.cache.request.controls import Controls
from core.cache.request.decision import (
    GENERATION_OFF,
    HIT,
    MISS,
    NO_STORE,
    PAUSED,
    SAMPLED,
    UNCACHED_BY_POLICY,
    Outcome,
    Policy,
    Request,
    choose_slot,
    decide,
)
from core.cache.request.keys import ROUTES, is_sampled, slot_key
from core.cache.request.requests import RequestKeys


@pytest.mark.parametrize(
    ("path", "body", "sampled"),
    [
        ("/api/chat", {"model": "m"}, True),  # Ollama's default temperature is 0.8
        ("/api/chat", {"model": "m", "options": {}}, True),
        ("/api/chat", {"model": "m", "options": {"temperature": 0}}, False),
        ("/api/chat", {"model": "m", "options": {"temperature": 0.0}}, False),
        ("/api/generate", {"model": "m", "options": {"temperature": 0.7}}, True),
        ("/api/generate", {"model": "m", "options": {"temperature": 0.7, "seed": 42}}, False),  # seeded: repeatable
        ("/api/generate", {"model": "m", "options": {"seed": 0}}, False),
        ("/api/generate", {"model": "m", "options": {"seed": -1}}, True),  # -1: a new random seed each time
        ("/api/generate", {"model": "m", "options": {"seed": 1.5}}, True),
        ("/api/generate", {"model": "m", "options": {"seed": True}}, True),
        ("/api/generate", {"model": "m", "options": {"temperature": "0"}}, True),
        ("/api/generate", {"model": "m", "temperature": 0}, True),  # the native routes read it in options only
        ("/v1/chat/completions", {"model": "m"}, True),  # the OpenAI routes default to 1.0
        ("/v1/chat/completions", {"model": "m", "temperature": 0}, False),
        ("/v1/completions", {"model": "m", "temperature": 1, "seed": 7}, False),
        ("/v1/completions", {"model": "m", "options": {"temperature": 0}}, True),  # not where OpenAI takes it
        ("/api/embed", {"model": "m", "input": "x"}, False),
        ("/api/embeddings", {"model": "m", "prompt": "x", "options": {"temperature": 1}}, False),
        ("/v1/embeddings", {"model": "m", "input": "x"}, False),
    ],
)
def test_what_is_sampled(path: str, body: dict[str, Any], sampled: bool) -> None:
    assert is_sampled(ROUTES[path], body) is sampled


def test_the_facts_of_a_request_say_whether_it_is_sampled_or_an_embedding() -> None:
    keys = RequestKeys()
    chat = keys.facts(ROUTES["/api/chat"], b'{"model": "m", "messages": []}', None)
    greedy = keys.facts(ROUTES["/api/chat"], b'{"model": "m", "messages": [], "options": {"temperature": 0}}', None)
    embed = keys.facts(ROUTES["/api/embed"], b'{"model": "m", "input": "x"}', None)
    assert chat is not None and chat.sampled and not chat.embeds
    assert greedy is not None and not greedy.sampled and not greedy.embeds
    assert embed is not None and not embed.sampled and embed.embeds


@dataclass(frozen=True)
class Found:
    streamed: bool = False
    created: float = 1000.0


SAMPLED_CHAT = Request("k", "m", streamed=False, sampled=True)
GREEDY_CHAT = Request("k", "m", streamed=False, sampled=False)
EMBEDDING = Request("k", "m", streamed=False, embeds=True)


@pytest.mark.parametrize(
    ("sampling", "request_", "found", "expected"),
    [
        ("all", SAMPLED_CHAT, Found(), HIT),
        ("all", SAMPLED_CHAT, None, MISS),
        ("all", GREEDY_CHAT, Found(), HIT),
        ("deterministic", SAMPLED_CHAT, Found(), SAMPLED),  # even an answer stored before: it passes through
        ("deterministic", SAMPLED_CHAT, None, SAMPLED),
        ("deterministic", GREEDY_CHAT, Found(), HIT),
        ("deterministic", GREEDY_CHAT, None, MISS),
        ("deterministic", EMBEDDING, Found(), HIT),
        ("off", SAMPLED_CHAT, Found(), GENERATION_OFF),
        ("off", GREEDY_CHAT, Found(), GENERATION_OFF),
        ("off", EMBEDDING, Found(), HIT),
        ("off", EMBEDDING, None, MISS),
    ],
)
def test_the_sampling_policy_in_the_decision_table(
    sampling: str, request_: Request, found: Found | None, expected: object
) -> None:
    assert decide(request_, found, policy=Policy(sampling)) == expected


def test_a_request_the_policy_leaves_out_passes_through_and_says_why() -> None:
    assert SAMPLED.outcome is GENERATION_OFF.outcome is Outcome.BYPASS and not SAMPLED.records
    assert "cache.sampling is deterministic" in SAMPLED.reason and "temperature 0 or a seed" in SAMPLED.reason
    assert "only embeddings" in GENERATION_OFF.reason
    policy = Policy("deterministic")
    assert decide(SAMPLED_CHAT, None, policy=policy, controls=Controls(only_if_cached=True)) == UNCACHED_BY_POLICY
    assert decide(SAMPLED_CHAT, None, policy=policy, controls=Controls(no_store=True)) == NO_STORE
    assert decide(SAMPLED_CHAT, None, policy=policy, caching=False) == PAUSED  # pausing wins over all


def test_how_many_answers_a_key_keeps() -> None:
    assert Policy("all", 3).slots(SAMPLED_CHAT) == 3
    assert Policy("all", 3).slots(GREEDY_CHAT) == 1  # a deterministic answer is one answer
    assert Policy("all", 3).slots(EMBEDDING) == 1
    assert Policy("all").slots(SAMPLED_CHAT) == 1
    assert Policy("deterministic", 3).slots(SAMPLED_CHAT) == 0  # left out: nothing is read
    assert Policy("off", 3).slots(GREEDY_CHAT) == 0 and Policy("off", 3).slots(EMBEDDING) == 1


def test_a_bucket_fills_its_first_empty_slot_then_serves_at_random() -> None:
    rng = random.Random(7)
    assert choose_slot([None], 3, rng) == 0
    assert choose_slot([Found(), None], 3, rng) == 1
    assert choose_slot([Found(), Found(), None], 3, rng) == 2
    assert choose_slot([Found(), None, Found()], 3, rng) == 1  # an answer gone (expired) is recorded again
    chosen = {choose_slot([Found(), Found(), Found()], 3, rng) for _ in range(200)}
    assert chosen == {0, 1, 2}
    assert {choose_slot([], 3, rng) for _ in range(200)} == {0, 1, 2}  # nothing read (a refresh): any of them
    assert choose_slot([Found()], 1, rng) == 0 and choose_slot([], 1, rng) == 0


def test_slot_keys_leave_the_first_answer_under_the_key_itself() -> None:
    assert slot_key("abc", 0) == "abc"
    assert [slot_key("abc", i) for i in (1, 2)] == ["abc~1", "abc~2"]
