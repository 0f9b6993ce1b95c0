"""The one typed client of a running engine's control API (the ``/-/`` routes of :mod:`core.control.api`).

:class:`ControlClient` (on ``httpx.Client``) serves the command line, :class:`AsyncControlClient` (on
``httpx.AsyncClient``) the desktop app, which also follows ``/-/events`` with it. Each call is described
once, in :mod:`core.control.calls` (method, path, whether it needs the token, what to send and which part
of the answer to return); the two clients only carry those descriptions out, with what they share (the
address, the token, reading answers and errors) in :mod:`core.control.exchange`. Build a client with a base URL and
the token, or with :meth:`ControlClient.from_settings`, which finds the engine through ``running.json``
and reads the token from the config directory.

Every failure raises :class:`ControlError`, whose message is one sentence a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from core.control.answers import (
    Cleared,
    Deleted,
    Entry,
    Health,
    InstalledModel,
    LoadedModel,
    OllamaChanged,
    OllamaLog,
    OllamaState,
    Paused,
    Restarted,
    SettingsTable,
    SettingsUpdated,
    Stopping,
    ThreadsApplied,
    TuneStatus,
    Unloaded,
)
from core.control.calls import _Call, _Calls
from core.control.exchange import ClientBase, ControlError, upstream_of
from core.control.warm import DEFAULT_CONCURRENCY, WarmItem, WarmStatus

__all__ = ["AsyncControlClient", "ControlClient", "ControlError", "upstream_of"]

T = TypeVar("T")


class ControlClient(ClientBase):
    """The blocking client (for the command line); use it as a context manager, or call :meth:`close`."""

    def __init__(self, url: str, token: str | None, *, token_file: Path | None = None) -> None:
        super().__init__(url, token, token_file=token_file)
        self._http = httpx.Client()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        request = self._request(self._http, call)
        try:
            response = self._http.send(request)
        except httpx.HTTPError as error:
            raise self._failure(error, call) from None
        return self._read(call, response)

    def health(self) -> Health:
        return self._run(_Calls.health())

    def stats(self) -> dict[str, Any]:
        """The ``/-/stats`` document (totals, latency, per model and route, store, resources, ...)."""
        return self._run(_Calls.stats())

    def metrics(self) -> str:
        """The Prometheus exposition text."""
        return self._run(_Calls.metrics())

    def entries(self, model: str | None = None, limit: int = 100) -> list[Entry]:
        """The newest entries first (of ``model`` only, if given)."""
        return self._run(_Calls.entries(model, limit))

    def delete_entry(self, key: str) -> Deleted:
        return self._run(_Calls.delete_entry(key))

    def clear(self, model: str | None = None, stale: bool = False) -> Cleared:
        """Remove every entry, or ``model``'s (with ``stale``: only those of builds no longer installed);
        ``model`` in the answer is the normalised name."""
        return self._run(_Calls.clear(model, stale))

    def explain(
        self, endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Why ``body`` on ``endpoint`` misses: its canonical form, key, whether it is cached, the nearest
        stored entries with the fields that differ (``headers``: Authorization, X-Cache-Namespace)."""
        return self._run(_Calls.explain(endpoint, body, headers))

    def hardware(self) -> dict[str, Any]:
        """As ``ollacache hardware --json``."""
        return self._run(_Calls.hardware())

    def shutdown(self) -> Stopping:
        """Stop the engine as SIGTERM would (Ollama it started stopped, running.json removed), once answered."""
        return self._run(_Calls.shutdown())

    def restart_ollama(self) -> Restarted:
        return self._run(_Calls.restart_ollama())

    def tune_start(self, model: str | None = None, runs: int = 3, apply: bool = False) -> TuneStatus:
        return self._run(_Calls.tune_start(model, runs, apply))

    def tune_status(self) -> TuneStatus:
        return self._run(_Calls.tune_status())

    def set_threads(self, num_thread: int) -> ThreadsApplied:
        return self._run(_Calls.set_threads(num_thread))

    def warm_start(self, items: Sequence[WarmItem], concurrency: int = DEFAULT_CONCURRENCY) -> WarmStatus:
        """Send ``items`` through the proxy, what is cached skipped (409 while one runs or caching is paused)."""
        return self._run(_Calls.warm_start(items, concurrency))

    def warm_status(self) -> WarmStatus:
        """The warm-up's counts and failures (``state`` idle before the first one)."""
        return self._run(_Calls.warm_status())

    def settings(self) -> SettingsTable:
        """Every setting with its kind, default, current value, source and what a change needs."""
        return self._run(_Calls.settings())

    def update_settings(self, changes: Mapping[str, Any], dry_run: bool = False) -> SettingsUpdated:
        """Write ``changes`` (``{"cache.ttl": "7d"}``; ``None`` = back to the default) all or none; what
        happened per setting. A refusal's :attr:`ControlError.fields` names each setting at fault.
        ``dry_run``: only check them, as a form does while the user types; nothing is written."""
        return self._run(_Calls.update_settings(changes, dry_run))

    def pause(self) -> Paused:
        """Pass every request through (``X-Cache: BYPASS``) until :meth:`resume`."""
        return self._run(_Calls.pause())

    def resume(self) -> Paused:
        return self._run(_Calls.resume())

    def installed_models(self) -> list[InstalledModel]:
        """Every model Ollama has installed, with the entries the cache holds of each."""
        return self._run(_Calls.installed_models())

    def ollama_models(self) -> list[LoadedModel]:
        """The models Ollama has in memory (``/api/ps``)."""
        return self._run(_Calls.ollama_models())

    def unload(self, model: str) -> Unloaded:
        """Have Ollama unload ``model`` now (404 for a model it does not know)."""
        return self._run(_Calls.unload(model))

    def start_ollama(self) -> OllamaChanged:
        """Start the Ollama that Ollacache runs (409 with the reason when it does not run one)."""
        return self._run(_Calls.start_ollama())

    def stop_ollama(self) -> OllamaChanged:
        """Stop the Ollama that Ollacache runs; it stays stopped until :meth:`start_ollama`."""
        return self._run(_Calls.stop_ollama())

    def ollama_log(self, lines: int = 100) -> OllamaLog:
        """The last ``lines`` (1 to 10000) lines of Ollama's log."""
        return self._run(_Calls.ollama_log(lines))


class AsyncControlClient(ClientBase):
    """The asyncio client (for the desktop app); ``async with`` it, or await :meth:`aclose`."""

    def __init__(self, url: str, token: str | None, *, token_file: Path | None = None) -> None:
        super().__init__(url, token, token_file=token_file)
        self._http = httpx.AsyncClient()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        request = self._request(self._http, call)
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as error:
            raise self._failure(error, call) from None
        return self._read(call, response)

    async def health(self) -> Health:
        return await self._run(_Calls.health())

    async def stats(self) -> dict[str, Any]:
        return await self._run(_Calls.stats())

    async def metrics(self) -> str:
        return await self._run(_Calls.metrics())

    async def entries(self, model: str | None = None, limit: int = 100) -> list[Entry]:
        return await self._run(_Calls.entries(model, limit))

    async def delete_entry(self, key: str) -> Deleted:
        return await self._run(_Calls.delete_entry(key))

    async def clear(self, model: str | None = None, stale: bool = False) -> Cleared:
        return await self._run(_Calls.clear(model, stale))

    async def explain(
        self, endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._run(_Calls.explain(endpoint, body, headers))

    async def hardware(self) -> dict[str, Any]:
        return await self._run(_Calls.hardware())

    async def shutdown(self) -> Stopping:
        return await self._run(_Calls.shutdown())

    async def restart_ollama(self) -> Restarted:
        return await self._run(_Calls.restart_ollama())

    async def tune_start(self, model: str | None = None, runs: int = 3, apply: bool = False) -> TuneStatus:
        return await self._run(_Calls.tune_start(model, runs, apply))

    async def tune_status(self) -> TuneStatus:
        return await self._run(_Calls.tune_status())

    async def set_threads(self, num_thread: int) -> ThreadsApplied:
        return await self._run(_Calls.set_threads(num_thread))

    async def warm_start(self, items: Sequence[WarmItem], concurrency: int = DEFAULT_CONCURRENCY) -> WarmStatus:
        return await self._run(_Calls.warm_start(items, concurrency))

    async def warm_status(self) -> WarmStatus:
        return await self._run(_Calls.warm_status())

    async def settings(self) -> SettingsTable:
        return await self._run(_Calls.settings())

    async def update_settings(self, changes: Mapping[str, Any], dry_run: bool = False) -> SettingsUpdated:
        return await self._run(_Calls.update_settings(changes, dry_run))

    async def pause(self) -> Paused:
        return await self._run(_Calls.pause())

    async def resume(self) -> Paused:
        return await self._run(_Calls.resume())

    async def installed_models(self) -> list[InstalledModel]:
        return await self._run(_Calls.installed_models())

    async def ollama_models(self) -> list[LoadedModel]:
        return await self._run(_Calls.ollama_models())

    async def unload(self, model: str) -> Unloaded:
        return await self._run(_Calls.unload(model))

    async def start_ollama(self) -> OllamaChanged:
        return await self._run(_Calls.start_ollama())

    async def stop_ollama(self) -> OllamaChanged:
        return await self._run(_Calls.stop_ollama())

    async def ollama_log(self, lines: int = 100) -> OllamaLog:
        return await self._run(_Calls.ollama_log(lines))

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """Follow ``/-/events``: ``(name, data)`` pairs, ``("stats", the /-/stats document)`` every second
        (every 5 s while the engine is quiet) and the engine's events as they happen. Ends when the engine shuts down;
        raises
        :class:`ControlError` when the connection fails or the engine falls silent. Stopping early:
        wrap it in ``contextlib.aclosing`` so the connection closes at once."""
        call = _Calls.events()
        request = self._request(self._http, call)
        try:
            response = await self._http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._refusal(response)
                self._check_stream(response)
                async for name, data in _server_sent_events(response.aiter_lines()):
                    try:
                        yield name, json.loads(data)
                    except ValueError:
                        raise self._not_ollacache(f"an event from {self.url} carries no JSON", 200) from None
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            raise self._failure(error, call) from None


async def _server_sent_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """``(event name, data)`` for each event of a ``text/event-stream`` (the WHATWG rules: ``data`` lines
    joined by newlines, a blank line ends an event, lines starting with ``:`` are comments)."""
    name, data = "", []
    async for line in lines:
        if not line:
            if data:
                yield name or "message", "\n".join(data)
            name, data = "", []
            continue
        field_name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field_name == "event":
            name = value
        elif field_name == "data":
            data.append(value)


__all__ = [
    "AsyncControlClient",
    "Cleared",
    "ControlClient",
    "ControlError",
    "Deleted",
    "Entry",
    "Health",
    "InstalledModel",
    "LoadedModel",
    "OllamaChanged",
    "OllamaLog",
    "OllamaState",
    "Paused",
    "Restarted",
    "SettingsTable",
    "SettingsUpdated",
    "Stopping",
    "ThreadsApplied",
    "TuneStatus",
    "Unloaded",
    "WarmStatus",
    "upstream_of",
]
