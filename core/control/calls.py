"""What each control call sends and how its answer is read: the body or query, the timeout, the keys an
engine's answer has, and which part of it to return. Its method, path and whether it needs the token are
declared once in :mod:`core.control.endpoints`; the sync and async clients of :mod:`core.control.client` only
carry these calls out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from core.control.answers import (
    Cleared,
    Deleted,
    Entry,
    Health,
    InstalledModel,
    LoadedModel,
    OllamaChanged,
    OllamaLog,
    Paused,
    Restarted,
    SettingsTable,
    SettingsUpdated,
    Stopping,
    ThreadsApplied,
    TuneStatus,
    Unloaded,
)
from core.control.endpoints import BY_NAME
from core.control.warm import WarmItem, WarmStatus

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
SLOW_TIMEOUT_S = 60.0  # calls that clear a large store or restart Ollama
EVENTS_READ_TIMEOUT_S = 30.0  # the engine sends stats every 1-5 s; this much silence means it hangs


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One control call: what to send, and how to read the answer (``T`` is what it returns)."""

    method: str
    path: str
    needs_token: bool = False
    params: Mapping[str, str | int] | None = None
    body: Mapping[str, Any] | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    text: bool = False  # the answer is text (metrics), not a JSON object
    keys: tuple[str, ...] = ()  # an engine's answer has these keys (anything else is not an engine)
    pick: str | None = None  # return only this key of the answer
    headers: dict[str, str] = field(default_factory=dict)


def _of(name: str, path: str | None = None, **options: Any) -> _Call[Any]:
    """The call declared as ``name`` in :data:`~core.control.endpoints.BY_NAME` (its method, path and token),
    with ``path`` filled in where it has a parameter and the client's ``options``."""
    endpoint = BY_NAME[name]
    return _Call(endpoint.method, path or endpoint.path, needs_token=endpoint.token, **options)


class _Calls:
    """Every route of the control API, once."""

    @staticmethod
    def health() -> _Call[Health]:
        return _of("health", keys=("status", "proxy", "upstream", "ollama"))

    @staticmethod
    def stats() -> _Call[dict[str, Any]]:
        return _of("stats", keys=("totals",))

    @staticmethod
    def metrics() -> _Call[str]:
        return _of("metrics", text=True)

    @staticmethod
    def entries(model: str | None, limit: int) -> _Call[list[Entry]]:
        params: dict[str, str | int] = {"limit": limit, **({"model": model} if model else {})}
        return _of("entries", params=params, keys=("entries",), pick="entries")

    @staticmethod
    def delete_entry(key: str) -> _Call[Deleted]:
        return _of("delete_entry", BY_NAME["delete_entry"].path.format(key=quote(key, safe="")), keys=("deleted",))

    @staticmethod
    def clear(model: str | None, stale: bool = False) -> _Call[Cleared]:
        body: dict[str, Any] = {**({"model": model} if model else {}), **({"stale": True} if stale else {})}
        return _of("clear", body=body, timeout=SLOW_TIMEOUT_S, keys=("removed", "model"))

    @staticmethod
    def explain(endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str] | None) -> _Call[dict[str, Any]]:
        """``POST /-/explain`` (token: it shows stored prompts); the engine's whole answer."""
        payload: dict[str, Any] = {
            "endpoint": endpoint,
            "body": dict(body),
            **({"headers": dict(headers)} if headers else {}),
        }
        return _of(
            "explain",
            body=payload,
            timeout=SLOW_TIMEOUT_S,
            keys=("key", "cached", "canonical", "nearest"),
        )

    @staticmethod
    def warm_start(items: Sequence[WarmItem], concurrency: int) -> _Call[WarmStatus]:
        body = {"requests": list(items), "concurrency": concurrency}
        return _of("warm_start", body=body, timeout=SLOW_TIMEOUT_S, keys=("state",))

    @staticmethod
    def warm_status() -> _Call[WarmStatus]:
        return _of("warm_status", keys=("state",))

    @staticmethod
    def hardware() -> _Call[dict[str, Any]]:
        return _of("hardware", keys=("recommended",))

    @staticmethod
    def shutdown() -> _Call[Stopping]:
        return _of("shutdown", keys=("stopping",))

    @staticmethod
    def restart_ollama() -> _Call[Restarted]:
        return _of("restart_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def tune_start(model: str | None, runs: int, apply: bool) -> _Call[TuneStatus]:
        body = {"runs": runs, "apply": apply, **({"model": model} if model else {})}
        return _of("tune_start", body=body, keys=("state",))

    @staticmethod
    def tune_status() -> _Call[TuneStatus]:
        return _of("tune_status", keys=("state",))

    @staticmethod
    def set_threads(num_thread: int) -> _Call[ThreadsApplied]:
        return _of(
            "set_threads",
            body={"num_thread": num_thread},
            timeout=SLOW_TIMEOUT_S,
            keys=("num_thread",),
        )

    @staticmethod
    def settings() -> _Call[SettingsTable]:
        return _of("settings", keys=("settings", "sections"))

    @staticmethod
    def update_settings(changes: Mapping[str, Any], dry_run: bool = False) -> _Call[SettingsUpdated]:
        return _of(
            "update_settings",
            body=dict(changes),
            timeout=SLOW_TIMEOUT_S,
            keys=("changes",),
            params={"dry_run": 1} if dry_run else None,
        )

    @staticmethod
    def pause() -> _Call[Paused]:
        return _of("pause", keys=("paused", "changed"))

    @staticmethod
    def resume() -> _Call[Paused]:
        return _of("resume", keys=("paused", "changed"))

    @staticmethod
    def installed_models() -> _Call[list[InstalledModel]]:
        return _of("installed_models", keys=("models",), pick="models", timeout=SLOW_TIMEOUT_S)

    @staticmethod
    def ollama_models() -> _Call[list[LoadedModel]]:
        return _of("ollama_models", keys=("models",), pick="models")

    @staticmethod
    def unload(model: str) -> _Call[Unloaded]:
        return _of(
            "unload",
            body={"model": model},
            timeout=SLOW_TIMEOUT_S,
            keys=("unloaded",),
        )

    @staticmethod
    def start_ollama() -> _Call[OllamaChanged]:
        return _of("start_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def stop_ollama() -> _Call[OllamaChanged]:
        return _of("stop_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def ollama_log(lines: int) -> _Call[OllamaLog]:
        return _of("ollama_log", params={"lines": lines}, keys=("path", "lines"))

    @staticmethod
    def events() -> _Call[None]:
        return _of("events", headers={"accept": "text/event-stream"}, timeout=EVENTS_READ_TIMEOUT_S)
