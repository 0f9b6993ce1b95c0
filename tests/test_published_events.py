"""The events of /-/events are declared once (core.observe.published): the engine publishes nothing else, and
the README's table of events comes from the declaration."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.observe.events import EventHub
from core.observe.published import EVENTS, NAMES, OLLAMA_EVENTS, OllamaChanged, readme_table

ROOT = Path(__file__).resolve().parents[1]


def test_an_event_not_declared_is_never_published() -> None:
    hub = EventHub()
    with pytest.raises(ValueError, match="'entry_did_vanish' is not an event"):
        hub.publish("entry_did_vanish", {})
    hub.publish("entry_did_store", {"key": "k"})  # declared: nobody listens, nothing happens


def test_each_event_is_declared_once_with_its_payload() -> None:
    assert len(NAMES) == len(EVENTS)
    assert all(event.when and event.payload for event in EVENTS)
    assert {event.payload for event in EVENTS if event.name in OLLAMA_EVENTS} == {OllamaChanged}


def test_the_readme_lists_exactly_the_declared_events() -> None:
    assert readme_table() in (ROOT / "README.md").read_text()
