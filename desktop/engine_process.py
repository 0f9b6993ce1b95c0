"""The engine behind the tray: a child process the app starts, watches and restarts, or one it found running.

:class:`EngineProcess` starts ``python -m core serve`` (the frozen executable with ``serve``) with the app's
environment (frozen: as it was before the bundle changed it, :func:`core.frozen.own_environment`), so ``OLLACACHE_*``
variables and ``config.toml`` configure it as they configure ``serve``.
It is ready once the engine named in ``running.json`` answers ``/-/health`` with the child's pid. When
the child dies it is started again after a backoff (1 s doubling to 30 s, back to 1 s after a healthy
minute). When an engine already answers for this user at start, the app attaches to it and leaves it
running on quit; if that engine goes away, the app starts its own. Everything runs on the asyncio loop
(qasync): asyncio subprocesses and the async control client, never a blocking call.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

from PySide6.QtCore import QObject, Signal

from core.config.settings import Settings
from core.control import running
from core.control.client import AsyncControlClient, ControlError
from core.engine.startup import log_dir
from core.frozen import command, own_environment

LOG_FILE = "engine.log"
LOG_KEEP_BYTES = 1 << 20  # engine.log is moved to engine.log.1 at start beyond this
READY_POLL_S = 0.1
ATTACHED_CHECK_S = 2.0
STOP_GRACE_S = 15.0  # the engine itself lets requests finish for 10 s


class EngineState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    DOWN = "down"  # died; being started again after the backoff
    STOPPED = "stopped"


class Backoff:
    """1 s doubling to 30 s; back to the first delay after a run that stayed healthy ``reset_after_s``."""

    def __init__(self, first_s: float = 1.0, most_s: float = 30.0, reset_after_s: float = 60.0) -> None:
        self.first_s, self.most_s, self.reset_after_s = first_s, most_s, reset_after_s
        self.delay_s = first_s

    def next(self, healthy_for_s: float) -> float:
        if healthy_for_s >= self.reset_after_s:
            self.delay_s = self.first_s
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.most_s)
        return delay


def engine_command(*, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """How to start the engine: this interpreter with ``-m core serve``, or the frozen executable with ``serve``."""
    return command("serve", frozen=frozen, executable=executable)


class EngineProcess(QObject):
    """Starts, watches and stops the engine. ``state_changed(str)`` carries an :class:`EngineState` value;
    ``ready(str)`` the engine's URL each time one answers; ``failed(str)`` why the engine died or could
    not start. :attr:`url` is the engine's address while it runs, :attr:`attached` whether it is not ours."""

    state_changed = Signal(str)
    ready = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        settings: Settings,
        parent: QObject | None = None,
        *,
        command: list[str] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.command = command or engine_command()
        self.backoff = backoff or Backoff()
        self.state = EngineState.STOPPED
        self.url: str | None = None
        self.attached = False
        self.process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._restarting = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    @property
    def log_path(self) -> Path:
        return log_dir(self.settings) / LOG_FILE

    def client(self) -> AsyncControlClient | None:
        """A control client of the running engine (the caller closes it), or ``None`` while none runs."""
        if self.url is None:
            return None
        return AsyncControlClient.from_settings(self.settings, self.url)

    async def wait_ready(self) -> str:
        """The engine's URL, as soon as one answers."""
        while True:
            await self._ready.wait()
            if self.url is not None:
                return self.url

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._supervise())

    async def stop(self) -> None:
        """Stop watching; stop the engine if this app started it (SIGTERM, SIGKILL after a grace period)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._terminate()
        self._set(EngineState.STOPPED, None)

    def cannot_restart(self) -> str | None:
        """Why :meth:`restart` cannot work now, or None."""
        if self.attached:
            return "This engine was started outside the app (ollacache serve): restart it where it runs"
        if self.pid is None:
            return "The engine is not running"
        return None

    async def restart(self) -> None:
        """Stop the engine this app started and start it again at once, so that it reads its settings anew;
        ``ready`` says when it answers again. Raises RuntimeError with :meth:`cannot_restart`'s reason."""
        if (why := self.cannot_restart()) is not None:
            raise RuntimeError(why)
        self._restarting = True
        await self._terminate()

    def _set(self, state: EngineState, url: str | None) -> None:
        self.url = url
        if url is None:
            self._ready.clear()
        else:
            self._ready.set()
        changed = state is not self.state
        self.state = state
        if changed:
            self.state_changed.emit(state.value)
        if url is not None and state is EngineState.RUNNING:
            self.ready.emit(url)

    async def _supervise(self) -> None:
        self._set(EngineState.STARTING, None)
        existing = await self._existing()
        if existing is not None:
            self.attached = True
            self._set(EngineState.RUNNING, existing)
            await self._watch_attached(existing)
            self.attached = False
            self._set(EngineState.DOWN, None)
            self.failed.emit(f"the engine at {existing} stopped answering; starting one")
        while not self._stopping:
            started = time.monotonic()
            healthy_at = await self._run_child()
            if self._stopping:
                return
            if self._restarting:  # asked for: no notice, no backoff
                self._restarting = False
                self._set(EngineState.STARTING, None)
                continue
            healthy_for = time.monotonic() - healthy_at if healthy_at is not None else 0.0
            delay = self.backoff.next(healthy_for)
            code = self.process.returncode if self.process is not None else None
            self._set(EngineState.DOWN, None)
            self.failed.emit(self._death_notice(code, time.monotonic() - started, delay))
            await asyncio.sleep(delay)
            self._set(EngineState.STARTING, None)

    async def _existing(self) -> str | None:
        """The URL of an engine already answering for this user, if ``running.json`` names one."""
        url = running.read_url(self.settings.config_dir)
        if url is None:
            return None
        with contextlib.suppress(ControlError):
            async with AsyncControlClient.from_settings(self.settings, url) as client:
                await client.health()
                return client.url
        return None

    async def _watch_attached(self, url: str) -> None:
        async with AsyncControlClient.from_settings(self.settings, url) as client:
            while True:
                await asyncio.sleep(ATTACHED_CHECK_S)
                try:
                    await client.health()
                except ControlError:
                    return

    async def _run_child(self) -> float | None:
        """Start the child, wait for it to answer, then for it to exit; when it became healthy, if it did."""
        with self._log() as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=own_environment(os.environ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=sys.platform != "win32",
            )  # a terminal's Ctrl-C reaches the app, which stops it
        waiting = asyncio.ensure_future(self.process.wait())
        try:
            url = await self._answering(self.process.pid, waiting)
            if url is None:
                return None
            healthy_at = time.monotonic()
            self._set(EngineState.RUNNING, url)
            await waiting
            return healthy_at
        finally:
            if not waiting.done():
                waiting.cancel()

    async def _answering(self, pid: int, exited: asyncio.Future[int]) -> str | None:
        """The child's URL once ``running.json`` names it and it answers with its pid; None if it exits."""
        while not exited.done():
            url = running.read_url(self.settings.config_dir)
            if url is not None:
                with contextlib.suppress(ControlError):
                    async with AsyncControlClient.from_settings(self.settings, url) as client:
                        if (await client.health()).get("pid") == pid:
                            return client.url
            await asyncio.wait([exited], timeout=READY_POLL_S)
        return None

    async def _terminate(self) -> None:
        """Stop the engine this app started: its own shutdown call first, the same graceful stop everywhere (on
        Windows a signal is TerminateProcess, which no process can catch: an Ollama it started would be left
        running, and running.json behind); SIGTERM if it does not answer, then a kill after a grace period."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        asked = False
        if self.url is not None:
            with contextlib.suppress(ControlError):
                async with AsyncControlClient.from_settings(self.settings, self.url) as client:
                    await client.shutdown()
                    asked = True
        if not asked:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def _log(self) -> IO[bytes]:
        path = self.log_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_KEEP_BYTES:
                os.replace(path, path.with_name(LOG_FILE + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")

    def _death_notice(self, code: int | None, ran_s: float, delay_s: float) -> str:
        how = (
            f"exited with status {code}"
            if code is not None and code >= 0
            else f"was killed (signal {-code})"
            if code is not None
            else "stopped"
        )
        tail = ""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            tail = f": {lines[-1]}" if lines else ""
        return f"the engine {how} after {ran_s:.0f} s{tail}; starting it again in {delay_s:g} s"
