"""Opt-in thread injection for an attached Ollama: only when the client sets none."""

from __future__ import annotations

import json

from core.http.inject import with_threads


def options(body: bytes) -> object:
    return json.loads(body).get("options")


def test_a_request_without_a_thread_count_gets_the_tuned_one() -> None:
    assert options(with_threads(b'{"model": "m", "prompt": "hi"}', 6)) == {"num_thread": 6}
    assert options(with_threads(b'{"model": "m", "options": {"temperature": 0}}', 6)) == {
        "temperature": 0,
        "num_thread": 6,
    }


def test_the_clients_own_value_always_wins() -> None:
    body = b'{"model": "m", "options": {"num_thread": 2}}'
    assert with_threads(body, 6) == body


def test_bodies_it_cannot_read_are_left_for_ollama_to_judge() -> None:
    for body in (b"{oops", b"[1]", b'{"options": "fast"}'):
        assert with_threads(body, 6) == body
