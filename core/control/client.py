"""The one typed client of a running engine's control API (the ``/-/`` routes of :mod:`core.control.api`).

:class:`ControlClient` (on ``httpx.Client``) serves the command line, :class:`AsyncControlClient` (on
``httpx.AsyncClient``) the desktop app, which also follows ``/-/events`` with it. Each call is declared
once, in :mod:`core.control.calls` (what to send and which part of the answer to return; its method, path and
token in :mod:`core.control.endpoints`), as a method both clients inherit; each client only says how a call is
carried out, blocking or awaited. What they share (the address, the token, reading answers and errors) is in
:mod:`core.control.exchange`. Build a client with a base URL and the token, or with
:meth:`ControlClient.from_settings`, which finds the engine through ``running.json`` and reads the token from the
config directory.

Every failure raises :class:`ControlError`, whose message is one sentence a person can act on.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
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
from core.control.calls import Calls, _Call, events_call
from core.control.exchange import ClientBase, ControlError, upstream_of
from core.control.warm import WarmStatus

T = TypeVar("T")


class ControlClient(Calls, ClientBase):
    """The blocking client (for the command line); use it as a context manager, or call :meth:`close`."""

    def __init__(
        self, url: str, token: str | None, *, token_file: Path | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        super().__init__(url, token, token_file=token_file, verify=verify)
        self._http = httpx.Client(verify=verify)

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


class AsyncControlClient(Calls, ClientBase):
    """The asyncio client (for the desktop app); ``async with`` it, or await :meth:`aclose`."""

    def __init__(
        self, url: str, token: str | None, *, token_file: Path | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        super().__init__(url, token, token_file=token_file, verify=verify)
        self._http = httpx.AsyncClient(verify=verify)

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

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """Follow ``/-/events``: ``(name, data)`` pairs, ``("stats", the /-/stats document)`` every second
        (every 5 s while the engine is quiet) and the engine's events as they happen. Ends when the engine shuts down;
        raises
        :class:`ControlError` when the connection fails or the engine falls silent. Stopping early:
        wrap it in ``contextlib.aclosing`` so the connection closes at once."""
        call = events_call()
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
