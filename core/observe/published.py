"""Every event the engine publishes on ``/-/events``, declared once: its name, the type of its payload, and when it
happens. :class:`~core.observe.events.EventHub` publishes nothing else, the desktop's feed turns each into a Qt
signal of its own, and the README's table of events comes from :func:`readme_table` (a test checks it).

Events are named after what happened, as Anki's hooks are (``ollama_did_exit``, ``entry_did_store``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict


class OllamaChanged(TypedDict):
    """An Ollama event: what happened in a sentence, and Ollama's state as ``/-/health`` shows it."""

    message: str
    ollama: dict[str, Any]


class Batch(TypedDict):
    """Requests told together: the newest (oldest first) and how many there were."""

    requests: list[dict[str, Any]]
    count: int


class Paused(TypedDict):
    paused: bool


class StoreChanged(TypedDict):
    store: dict[str, Any]  # as on /-/health


@dataclass(frozen=True)
class Published:
    """One event: ``payload`` is its payload's type (a ``dict`` of its own where it is a document)."""

    name: str
    payload: type
    when: str


_OLLAMA = [
    ("ollama_did_spawn", "the Ollama Ollacache runs started"),
    ("ollama_did_become_healthy", "it answers"),
    ("ollama_did_become_unhealthy", "it stopped answering"),
    ("ollama_did_hang", "it was declared hung"),
    ("ollama_did_exit", "it exited (crash or not)"),
    ("ollama_will_restart", "it will be started again (after a backoff, or as the user asked)"),
    ("ollama_did_fail", "it was given up on"),
    ("ollama_did_stop", "it was stopped (at shutdown or by the user)"),
    ("ollama_did_attach", "an Ollama started elsewhere was found"),
    ("ollama_did_detach", "an Ollama started elsewhere was left alone"),
    ("ollama_did_disappear", "an Ollama started elsewhere went away"),
    (
        "ollama_is_not_installed",
        "no `ollama` program was found and nothing answers (with the install hint; the app shows it, with no "
        "notification)",
    ),
    ("ollama_is_not_managed", "`ollama.manage` is `never` and nothing answers"),
]

EVENTS: tuple[Published, ...] = (
    Published("stats", dict, "once a second, every 5 s while the engine is quiet: the `/-/stats` document"),
    Published("entry_did_store", dict, "an answer was stored (its metadata, as in `/-/entries`)"),
    Published(
        "requests_did_finish",
        Batch,
        "requests on cached routes answered since the last batch, at most four batches a second: `requests` (the "
        "newest 100, oldest first, each with `time`, `client`, `model`, `route`, `cache` (`HIT`, `MISS`, `BYPASS`, "
        "`REFRESH`, `SHARED`, `PARTIAL`), `status`, `latency_ms`, `tokens`, `saved_s`, `streamed`, and `id` when its "
        "start was told) and `count` (how many there were); never the prompt or the answer. At 1,000 hits a second "
        "that is four events a second instead of a thousand",
    ),
    Published(
        "requests_did_start",
        Batch,
        "requests forwarded to Ollama still under way when a batch goes out (a long generation): `requests` (`id`, "
        "`time`, `client`, `model`, `route`, `streamed`) and `count`; the finish carries the same `id`",
    ),
    *(Published(name, OllamaChanged, when) for name, when in _OLLAMA),
    Published("tune_did_progress", dict, "a measurement of `POST /-/tune` moved on (one run sent or answered)"),
    Published("tune_did_finish", dict, "a measurement ended (its status, with the result)"),
    Published("warm_did_progress", dict, "a warm-up's counts (at most four a second)"),
    Published("warm_did_finish", dict, "a warm-up ended (its counts and failures)"),
    Published(
        "cache_did_pause", Paused, 'caching was paused (`{"paused": true}`; a pause that changes nothing sends none)'
    ),
    Published("cache_did_resume", Paused, 'caching was resumed (`{"paused": false}`)'),
    Published(
        "store_did_fail",
        StoreChanged,
        'the store failed and the proxy passes everything through (`{"store": ...}`, as on `/-/health`; one event '
        "per change, not per failed request)",
    ),
    Published("store_did_recover", StoreChanged, "the store works again"),
)
NAMES: frozenset[str] = frozenset(event.name for event in EVENTS)
OLLAMA_EVENTS: tuple[str, ...] = tuple(name for name, _ in _OLLAMA)


def readme_table() -> str:
    """The README's table of events, one row per event."""
    rows = [f"| `{event.name}` | {event.when} |" for event in EVENTS]
    return "\n".join(["| event | when |", "|---|---|", *rows])
