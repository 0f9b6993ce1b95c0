"""What each control call sends and how its answer is read: the body or query, the timeout, the keys an
engine's answer has, and which part of it to return. Its method, path and whether it needs the token are
declared once in :mod:`core.control.endpoints`; the sync and async clients of :mod:`core.control.client` only
carry these calls out."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload
from urllib.parse import quote

from core.control.answers import (
    Cleared,
    Deleted,
    Entry,
    Health,
    InstalledModel,
    KeyRevoked,
    ListedKey,
    LoadedModel,
    NewKey,
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
from core.control.warm import DEFAULT_CONCURRENCY, WarmItem, WarmStatus

T = TypeVar("T")
P = ParamSpec("P")

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


class _Blocking(Protocol):
    def _run(self, call: _Call[T]) -> T: ...


class _Awaiting(Protocol):
    def _run(self, call: _Call[T]) -> Awaitable[T]: ...


class _Method(Generic[P, T]):
    """A call declared once that is a method of both clients: the client's ``_run`` carries it out, so the
    blocking client returns the answer and the asyncio client an awaitable of it."""

    def __init__(self, make: Callable[P, _Call[T]]) -> None:
        self.make = make
        functools.update_wrapper(self, make)

    @overload
    def __get__(self, client: None, owner: type) -> _Method[P, T]: ...
    @overload
    def __get__(self, client: _Awaiting, owner: type) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, client: _Blocking, owner: type) -> Callable[P, T]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self

        @functools.wraps(self.make)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._run(self.make(*args, **kwargs))

        return method


def _call(make: Callable[P, _Call[T]]) -> _Method[P, T]:
    return _Method(make)


class Calls:
    """Every call of the control API, once, as a method of both clients (see :class:`_Method`)."""

    @_call
    def health() -> _Call[Health]:
        return _of("health", keys=("status", "proxy", "upstream", "ollama"))

    @_call
    def stats() -> _Call[dict[str, Any]]:
        """The ``/-/stats`` document (totals, latency, per model and route, store, resources, ...)."""
        return _of("stats", keys=("totals",))

    @_call
    def metrics() -> _Call[str]:
        """The Prometheus exposition text."""
        return _of("metrics", text=True)

    @_call
    def entries(model: str | None = None, limit: int = 100) -> _Call[list[Entry]]:
        """The newest entries first (of ``model`` only, if given)."""
        params: dict[str, str | int] = {"limit": limit, **({"model": model} if model else {})}
        return _of("entries", params=params, keys=("entries",), pick="entries")

    @_call
    def delete_entry(key: str) -> _Call[Deleted]:
        return _of("delete_entry", BY_NAME["delete_entry"].path.format(key=quote(key, safe="")), keys=("deleted",))

    @_call
    def clear(model: str | None = None, stale: bool = False, older_than: str | int | None = None) -> _Call[Cleared]:
        """Remove every entry, or ``model``'s (with ``stale``: only those of builds no longer installed; with
        ``older_than``, an age such as "7d": only those stored longer ago); ``model`` in the answer is the
        normalised name."""
        body: dict[str, Any] = {**({"model": model} if model else {}), **({"stale": True} if stale else {})}
        if older_than is not None:
            body["older_than"] = older_than
        return _of("clear", body=body, timeout=SLOW_TIMEOUT_S, keys=("removed", "model"))

    @_call
    def explain(
        endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> _Call[dict[str, Any]]:
        """Why ``body`` on ``endpoint`` misses: its canonical form, key, whether it is cached, the nearest
        stored entries with the fields that differ (``headers``: Authorization, X-Cache-Namespace). Needs the
        token, as it shows stored prompts."""
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

    @_call
    def warm_start(items: Sequence[WarmItem], concurrency: int = DEFAULT_CONCURRENCY) -> _Call[WarmStatus]:
        """Send ``items`` through the proxy, what is cached skipped (409 while one runs or caching is paused)."""
        body = {"requests": list(items), "concurrency": concurrency}
        return _of("warm_start", body=body, timeout=SLOW_TIMEOUT_S, keys=("state",))

    @_call
    def warm_status() -> _Call[WarmStatus]:
        """The warm-up's counts and failures (``state`` idle before the first one)."""
        return _of("warm_status", keys=("state",))

    @_call
    def hardware() -> _Call[dict[str, Any]]:
        """As ``ollacache hardware --json``."""
        return _of("hardware", keys=("recommended",))

    @_call
    def shutdown() -> _Call[Stopping]:
        """Stop the engine as SIGTERM would (Ollama it started stopped, running.json removed), once answered."""
        return _of("shutdown", keys=("stopping",))

    @_call
    def restart_ollama() -> _Call[Restarted]:
        return _of("restart_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @_call
    def tune_start(model: str | None = None, runs: int = 3, apply: bool = False) -> _Call[TuneStatus]:
        body = {"runs": runs, "apply": apply, **({"model": model} if model else {})}
        return _of("tune_start", body=body, keys=("state",))

    @_call
    def tune_status() -> _Call[TuneStatus]:
        return _of("tune_status", keys=("state",))

    @_call
    def set_threads(num_thread: int) -> _Call[ThreadsApplied]:
        return _of(
            "set_threads",
            body={"num_thread": num_thread},
            timeout=SLOW_TIMEOUT_S,
            keys=("num_thread",),
        )

    @_call
    def settings() -> _Call[SettingsTable]:
        """Every setting with its kind, default, current value, source and what a change needs."""
        return _of("settings", keys=("settings", "sections"))

    @_call
    def update_settings(changes: Mapping[str, Any], dry_run: bool = False) -> _Call[SettingsUpdated]:
        """Write ``changes`` (``{"cache.ttl": "7d"}``; ``None`` = back to the default) all or none; what
        happened per setting. A refusal's :attr:`ControlError.fields` names each setting at fault.
        ``dry_run``: only check them, as a form does while the user types; nothing is written."""
        return _of(
            "update_settings",
            body=dict(changes),
            timeout=SLOW_TIMEOUT_S,
            keys=("changes",),
            params={"dry_run": 1} if dry_run else None,
        )

    @_call
    def pause() -> _Call[Paused]:
        """Pass every request through (``X-Cache: BYPASS``) until :meth:`resume`."""
        return _of("pause", keys=("paused", "changed"))

    @_call
    def resume() -> _Call[Paused]:
        return _of("resume", keys=("paused", "changed"))

    @_call
    def installed_models() -> _Call[list[InstalledModel]]:
        """Every model Ollama has installed, with the entries the cache holds of each."""
        return _of("installed_models", keys=("models",), pick="models", timeout=SLOW_TIMEOUT_S)

    @_call
    def ollama_models() -> _Call[list[LoadedModel]]:
        """The models Ollama has in memory (``/api/ps``)."""
        return _of("ollama_models", keys=("models",), pick="models")

    @_call
    def unload(model: str) -> _Call[Unloaded]:
        """Have Ollama unload ``model`` now (404 for a model it does not know)."""
        return _of(
            "unload",
            body={"model": model},
            timeout=SLOW_TIMEOUT_S,
            keys=("unloaded",),
        )

    @_call
    def start_ollama() -> _Call[OllamaChanged]:
        """Start the Ollama that Ollacache runs (409 with the reason when it does not run one)."""
        return _of("start_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @_call
    def stop_ollama() -> _Call[OllamaChanged]:
        """Stop the Ollama that Ollacache runs; it stays stopped until :meth:`start_ollama`."""
        return _of("stop_ollama", timeout=SLOW_TIMEOUT_S, keys=("ollama",))

    @_call
    def ollama_log(lines: int = 100) -> _Call[OllamaLog]:
        """The last ``lines`` (1 to 10000) lines of Ollama's log."""
        return _of("ollama_log", params={"lines": lines}, keys=("path", "lines"))

    @_call
    def keys() -> _Call[list[ListedKey]]:
        """The install's API keys, oldest first: name, made, last used; never a key or its hash."""
        return _of("keys", keys=("keys",), pick="keys")

    @_call
    def add_key(name: str) -> _Call[NewKey]:
        """Make a key named ``name``; the answer holds the key, the only time it is shown (400: a bad or
        taken name)."""
        return _of("add_key", body={"name": name}, keys=("name", "key"))

    @_call
    def revoke_key(name: str) -> _Call[KeyRevoked]:
        """Revoke the key named ``name`` (404: no such key)."""
        return _of("revoke_key", BY_NAME["revoke_key"].path.format(name=quote(name, safe="")), keys=("revoked",))


def events_call() -> _Call[None]:
    """``/-/events``, read as a stream by :meth:`AsyncControlClient.events`, not by ``_run``."""
    return _of("events", headers={"accept": "text/event-stream"}, timeout=EVENTS_READ_TIMEOUT_S)
