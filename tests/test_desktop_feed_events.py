"""The desktop's feed has one Qt signal per event the engine publishes, named as the event."""

from __future__ import annotations

from PySide6.QtCore import SignalInstance

from core.config.settings import load
from core.observe.published import NAMES
from desktop.feed import Feed


async def _nowhere() -> str:
    return "http://127.0.0.1:9"


def test_every_published_event_is_a_signal_of_the_feed_and_on_connects_a_slot_by_name() -> None:
    feed = Feed(load(), _nowhere)
    assert all(isinstance(getattr(feed, name, None), SignalInstance) for name in NAMES - {"stats"})
    seen: list[tuple[str, dict[str, object]]] = []
    feed.on(("ollama_did_exit", "tune_did_finish"), lambda name, payload: seen.append((name, payload)))
    feed.ollama_did_exit.emit({"message": "exited"})
    feed.tune_did_finish.emit({"state": "done"})
    feed.entry_did_store.emit({"key": "k"})  # not connected
    assert seen == [("ollama_did_exit", {"message": "exited"}), ("tune_did_finish", {"state": "done"})]
