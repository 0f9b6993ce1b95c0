"""The engine's ``/-/events`` stream as Qt signals: the one source of live data for every widget.

:class:`Feed` follows the stream of whatever engine :class:`~desktop.engine_process.EngineProcess` says
runs, and follows the next one when the engine restarts (at a new address, with ``--port 0``). Widgets
connect to its signals and read :attr:`Feed.stats`; none polls the engine on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.config.settings import Settings
from core.control.client import AsyncControlClient, ControlError
from core.observe.published import NAMES

RETRY_S = 1.0  # after a stream broke off while the engine still seems to run


class Feed(QObject):
    """``stats_changed(dict)``: the ``/-/stats`` document, once a second (every 5 s while the engine has
    been quiet for a while: no request, no event). Every other event of :data:`core.observe.published.EVENTS`
    is a signal of its own, named as the event, with its payload (``entry_did_store(dict)``,
    ``ollama_did_exit(dict)``...); :meth:`on` connects one slot to several of them.
    ``connection_changed(bool)``: the stream began (True) or broke off (False). ``url_changed(str)``: the
    engine followed now. :attr:`stats` is the latest document (``None`` until the first),
    :attr:`connected` whether the stream runs, :attr:`url` the engine's address; :attr:`current` the latest
    document while the stream runs (None otherwise: figures of an engine that went away are not shown)."""

    stats_changed = Signal(dict)
    connection_changed = Signal(bool)
    url_changed = Signal(str)
    # one signal per event the engine publishes (core.observe.published; a test checks each has one)
    entry_did_store = Signal(dict)
    requests_did_finish = Signal(dict)
    requests_did_start = Signal(dict)
    ollama_did_spawn = Signal(dict)
    ollama_did_become_healthy = Signal(dict)
    ollama_did_become_unhealthy = Signal(dict)
    ollama_did_hang = Signal(dict)
    ollama_did_exit = Signal(dict)
    ollama_will_restart = Signal(dict)
    ollama_did_fail = Signal(dict)
    ollama_did_stop = Signal(dict)
    ollama_did_attach = Signal(dict)
    ollama_did_detach = Signal(dict)
    ollama_did_disappear = Signal(dict)
    ollama_is_not_installed = Signal(dict)
    ollama_is_not_managed = Signal(dict)
    tune_did_progress = Signal(dict)
    tune_did_finish = Signal(dict)
    warm_did_progress = Signal(dict)
    warm_did_finish = Signal(dict)
    cache_did_pause = Signal(dict)
    cache_did_resume = Signal(dict)
    store_did_fail = Signal(dict)
    store_did_recover = Signal(dict)

    def __init__(
        self, settings: Settings, address: Callable[[], Awaitable[str]], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._address = address
        self.stats: dict[str, Any] | None = None
        self.connected = False
        self.url: str | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> dict[str, Any] | None:
        return self.stats if self.connected else None

    def on(self, names: Iterable[str], slot: Callable[[str, dict[str, Any]], None]) -> None:
        """Connect ``slot(name, payload)`` to the signal of each event of ``names``."""
        for name in names:
            getattr(self, name).connect(functools.partial(slot, name))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_connected(False)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.connection_changed.emit(connected)

    async def _follow(self) -> None:
        while True:
            url = await self._address()
            if url != self.url:
                self.url = url
                self.url_changed.emit(url)
            try:
                async with AsyncControlClient.from_settings(self.settings, url) as client:
                    async with contextlib.aclosing(client.events()) as events:
                        async for name, data in events:
                            self._set_connected(True)
                            payload = data if isinstance(data, dict) else {"value": data}
                            if name == "stats":
                                self.stats = payload
                                self.stats_changed.emit(payload)
                            elif name in NAMES:  # an event this app does not know (a newer engine) is skipped
                                getattr(self, name).emit(payload)
                self.last_error = None  # the engine shut down and ended the stream
            except ControlError as error:
                self.last_error = str(error)
            self._set_connected(False)
            await asyncio.sleep(RETRY_S)
