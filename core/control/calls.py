"""Every call of the control API described once: method, path, whether it needs the token, what to send,
the keys an engine's answer has, and which part of it to return. The sync and async clients of
:mod:`core.control.client` only carry these descriptions out."""

from __future__ import annotations

from collections.abc import Mapping
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


class _Calls:
    """Every route of the control API, once."""

    @staticmethod
    def health() -> _Call[Health]:
        return _Call("GET", "/-/health", keys=("status", "proxy", "upstream", "ollama"))

    @staticmethod
    def stats() -> _Call[dict[str, Any]]:
        return _Call("GET", "/-/stats", keys=("totals",))

    @staticmethod
    def metrics() -> _Call[str]:
        return _Call("GET", "/-/metrics", text=True)

    @staticmethod
    def entries(model: str | None, limit: int) -> _Call[list[Entry]]:
        params: dict[str, str | int] = {"limit": limit, **({"model": model} if model else {})}
        return _Call("GET", "/-/entries", params=params, keys=("entries",), pick="entries")

    @staticmethod
    def delete_entry(key: str) -> _Call[Deleted]:
        return _Call("DELETE", f"/-/entries/{quote(key, safe='')}", needs_token=True, keys=("deleted",))

    @staticmethod
    def clear(model: str | None, stale: bool = False) -> _Call[Cleared]:
        body: dict[str, Any] = {**({"model": model} if model else {}), **({"stale": True} if stale else {})}
        return _Call("POST", "/-/clear", needs_token=True, body=body, timeout=SLOW_TIMEOUT_S, keys=("removed", "model"))

    @staticmethod
    def explain(endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str] | None) -> _Call[dict[str, Any]]:
        """``POST /-/explain`` (token: it shows stored prompts); the engine's whole answer."""
        payload: dict[str, Any] = {
            "endpoint": endpoint,
            "body": dict(body),
            **({"headers": dict(headers)} if headers else {}),
        }
        return _Call(
            "POST",
            "/-/explain",
            needs_token=True,
            body=payload,
            timeout=SLOW_TIMEOUT_S,
            keys=("key", "cached", "canonical", "nearest"),
        )

    @staticmethod
    def hardware() -> _Call[dict[str, Any]]:
        return _Call("GET", "/-/hardware", keys=("recommended",))

    @staticmethod
    def shutdown() -> _Call[Stopping]:
        return _Call("POST", "/-/shutdown", needs_token=True, keys=("stopping",))

    @staticmethod
    def restart_ollama() -> _Call[Restarted]:
        return _Call("POST", "/-/ollama/restart", needs_token=True, timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def tune_start(model: str | None, runs: int, apply: bool) -> _Call[TuneStatus]:
        body = {"runs": runs, "apply": apply, **({"model": model} if model else {})}
        return _Call("POST", "/-/tune", needs_token=True, body=body, keys=("state",))

    @staticmethod
    def tune_status() -> _Call[TuneStatus]:
        return _Call("GET", "/-/tune", keys=("state",))

    @staticmethod
    def set_threads(num_thread: int) -> _Call[ThreadsApplied]:
        return _Call(
            "POST",
            "/-/tuning",
            needs_token=True,
            body={"num_thread": num_thread},
            timeout=SLOW_TIMEOUT_S,
            keys=("num_thread",),
        )

    @staticmethod
    def settings() -> _Call[SettingsTable]:
        return _Call("GET", "/-/settings", keys=("settings", "sections"))

    @staticmethod
    def update_settings(changes: Mapping[str, Any], dry_run: bool = False) -> _Call[SettingsUpdated]:
        return _Call(
            "PUT",
            "/-/settings",
            needs_token=True,
            body=dict(changes),
            timeout=SLOW_TIMEOUT_S,
            keys=("changes",),
            params={"dry_run": 1} if dry_run else None,
        )

    @staticmethod
    def pause() -> _Call[Paused]:
        return _Call("POST", "/-/pause", needs_token=True, keys=("paused", "changed"))

    @staticmethod
    def resume() -> _Call[Paused]:
        return _Call("POST", "/-/resume", needs_token=True, keys=("paused", "changed"))

    @staticmethod
    def installed_models() -> _Call[list[InstalledModel]]:
        return _Call("GET", "/-/ollama/installed", keys=("models",), pick="models", timeout=SLOW_TIMEOUT_S)

    @staticmethod
    def ollama_models() -> _Call[list[LoadedModel]]:
        return _Call("GET", "/-/ollama/models", keys=("models",), pick="models")

    @staticmethod
    def unload(model: str) -> _Call[Unloaded]:
        return _Call(
            "POST",
            "/-/ollama/unload",
            needs_token=True,
            body={"model": model},
            timeout=SLOW_TIMEOUT_S,
            keys=("unloaded",),
        )

    @staticmethod
    def start_ollama() -> _Call[OllamaChanged]:
        return _Call("POST", "/-/ollama/start", needs_token=True, timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def stop_ollama() -> _Call[OllamaChanged]:
        return _Call("POST", "/-/ollama/stop", needs_token=True, timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @staticmethod
    def ollama_log(lines: int) -> _Call[OllamaLog]:
        return _Call("GET", "/-/ollama/log", params={"lines": lines}, keys=("path", "lines"))

    @staticmethod
    def events() -> _Call[None]:
        return _Call("GET", "/-/events", headers={"accept": "text/event-stream"}, timeout=EVENTS_READ_TIMEOUT_S)
