"""The process side of Ollama supervision: carries out what :func:`core.supervision.machine.step` decides.

It starts and signals ``ollama serve`` (a :class:`core.supervision.child.Child`), runs the health checks
(:meth:`core.ollama.client.OllamaAPI.version`), keeps the one timer the state machine asks for, and feeds
every outcome back as an event. All of it runs on the engine's event loop; times are the loop's clock
inside, and wall-clock times in :meth:`Supervisor.to_json`.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.ollama.client import OllamaAPI, OllamaError, not_ollama
from core.supervision.binary import Found, download_page, install_hint
from core.supervision.child import Child, ollama_host
from core.supervision.machine import step
from core.supervision.ollama_log import tail
from core.supervision.record import Supervision, on_its_way
from core.supervision.vocabulary import (
    NOT_OLLAMA,
    POLICY,
    Action,
    Event,
    Exited,
    HealthFailed,
    HealthOk,
    Kill,
    Manage,
    Policy,
    Refuse,
    Report,
    RestartRequested,
    ScheduleCheck,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    StopRequested,
    Terminate,
    Tick,
    UpstreamFailed,
    UserStartRequested,
    UserStopRequested,
    Wait,
)

log = logging.getLogger(__name__)
CLOCK_FIELDS = ("started_at", "healthy_since", "unhealthy_since", "retry_at", "kill_at")  # loop times in Supervision


def _iso(at: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


class Supervisor:
    """Supervises the Ollama at ``upstream`` according to ``manage``.

    ``env`` is the environment added to ours for a started Ollama (the tuning, then the user's
    overrides); ``on_report`` receives each :class:`Report` (for ``/-/events``).
    """

    def __init__(
        self,
        *,
        manage: Manage,
        binary: Found | None,
        upstream: str,
        shown_upstream: str,
        env: Mapping[str, str],
        log_path: Path,
        policy: Policy = POLICY,
        on_report: Callable[[Report], None] | None = None,
        find: Callable[[], Found | None] | None = None,
    ) -> None:
        self.manage = manage
        self.binary = binary
        self._find = find  # looks for the binary again when the user starts or restarts (Ollama may be new)
        self.upstream = upstream
        self.shown_upstream = shown_upstream
        self.env: dict[str, str] = {}
        self.set_env(env)
        self.log_path = log_path
        self.policy = policy
        self.on_report = on_report
        self.sv = Supervision()
        self._child = Child(log_path)
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refusal: str | None = None
        self._api: OllamaAPI | None = None
        self._checks: set[asyncio.TimerHandle] = set()
        self._stopped = False
        self._changed = asyncio.Event()  # set, then replaced, at each change of state
        self._suspected = False  # a request failed to reach Ollama, and the check it asked for is under way

    def set_env(self, env: Mapping[str, str]) -> None:
        """The environment for the next start; ``OLLAMA_HOST`` always names the upstream address."""
        self.env = {**env, "OLLAMA_HOST": ollama_host(self.upstream)}

    @property
    def supervising(self) -> bool:
        """Whether Ollacache runs (or will run again) its own Ollama, as opposed to attaching or not managing."""
        return (
            self.sv.owned
            or self.sv.held
            or self.sv.state in ("starting", "backing-off")
            or (self.sv.state == "failed" and self.binary is not None and self.manage != "never")
        )

    @property
    def pid(self) -> int | None:
        """The pid of the Ollama we started, while it runs."""
        return self.sv.pid if self.sv.owned else None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._api = OllamaAPI(self.upstream, timeout=self.policy.health_timeout_s)
        self._feed(
            Start(
                self.manage,
                self.binary is not None,
                await self._answers(),
                upstream=self.shown_upstream,
                install_hint=install_hint(),
            )
        )

    async def restart(self) -> str | None:
        """Restart an Ollama we started; returns the reason when that is refused."""
        self._refusal = None
        self._detect()
        self._feed(RestartRequested(binary_found=self.binary is not None, upstream_answers=await self._answers()))
        return self._refusal

    async def stop_by_user(self) -> str | None:
        """Stop the Ollama we run and keep it stopped until :meth:`start_by_user`; returns the reason when
        that is refused. Returns once it has exited (after the grace period and a kill, at worst)."""
        self._refusal = None
        self._feed(UserStopRequested())
        if self._refusal is None:
            await self._child.wait_exited(self.policy.terminate_grace_s + 5)
        return self._refusal

    async def start_by_user(self) -> str | None:
        """Start our Ollama again after a stop (or a failure); returns the reason when that is refused."""
        self._refusal = None
        self._detect()
        self._feed(UserStartRequested(binary_found=self.binary is not None, upstream_answers=await self._answers()))
        return self._refusal

    def upstream_failed(self) -> None:
        """A request could not reach Ollama: check it now (once, until that check has answered)."""
        if not self._suspected:
            self._suspected = True
            self._feed(UpstreamFailed())

    def _detect(self) -> None:
        """Look for the binary again unless ours runs (installed, moved or removed since the last look)."""
        if self._find is not None and not self.sv.owned:
            self.binary = self._find()

    async def log_lines(self, count: int) -> list[str]:
        """The last ``count`` lines of Ollama's log (its rotated files too, when the current one is
        shorter); none when there is no log yet."""
        return await asyncio.to_thread(tail, self.log_path, count)

    async def stop(self) -> None:
        """Stop the Ollama we started (terminate, then kill after the grace period); leave others alone."""
        self._feed(StopRequested())
        await self._child.wait_exited(self.policy.terminate_grace_s + 5)
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for handle in self._checks:
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._api is not None:
            await self._api.aclose()

    def note(self) -> str | None:
        """Why Ollama may not answer, for error messages, when supervision knows: ``None`` if it should."""
        if self.sv.state in ("running", "attached") or self.manage == "never":
            return None
        if self.sv.state == "not_installed":
            return self.sv.reason
        return f"Ollama is {self.sv.state}: {self.sv.reason}"

    def to_json(self) -> dict[str, Any]:
        """The supervision state for ``/-/health``.

        Moments (``started_at``, ``healthy_since``, ``unhealthy_since``, ``retry_at``, ``kill_at`` and each of
        ``crash_times``) are wall-clock times, ISO 8601 in UTC to the second like the stats' ``since``
        (``"2025-07-01T12:00:00+00:00"``), or None; ``uptime_s`` and ``next_retry_in_s`` are seconds from now.
        """
        now = self._now()
        data = self.sv.to_json(now)
        wall = time.time() - now  # the wall-clock time at loop time 0
        for key in CLOCK_FIELDS:
            data[key] = _iso(wall + data[key]) if data[key] is not None else None
        data["crash_times"] = [_iso(wall + at) for at in data["crash_times"]]
        data.update(
            binary=self.binary.path if self.binary else None, log=str(self.log_path), managed=self.manage != "never"
        )
        if self.sv.state == "failed" or self.sv.last_exit:
            data["log_tail"] = list(self._child.tail)[-10:]
        if self.binary is None and self.manage != "never":
            data["install_hint"] = install_hint()
            data["download"] = download_page()
        return data

    # -- carrying out actions ------------------------------------------------------------------
    @property
    def on_its_way(self) -> bool:
        """Whether the Ollama we run is starting or restarting (see :func:`core.supervision.machine.on_its_way`)."""
        return on_its_way(self.sv)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait while the Ollama we run is on its way, at most ``timeout_s`` seconds; at once otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while on_its_way(self.sv) and (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return

    def _feed(self, event: Event) -> None:
        before = self.sv
        self.sv, actions = step(self.sv, event, self._now(), self.policy)
        if self.sv.state != before.state or self.sv.exit_intent != before.exit_intent:
            self._changed.set()  # wakes whoever waits on this state; the next change has a new event
            self._changed = asyncio.Event()
        for action in actions:
            self._do(action)

    def _do(self, action: Action) -> None:
        loop = asyncio.get_running_loop()
        match action:
            case Spawn():
                self._spawn_task(self._spawn())
            case Terminate(pid=pid):
                self._child.send(pid, signal.SIGTERM)
            case Kill(pid=pid):
                self._child.send(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            case ScheduleCheck(after_s=after, seq=seq):
                self._checks = {handle for handle in self._checks if not handle.cancelled()}
                self._checks.add(loop.call_later(after, lambda: self._spawn_task(self._check(seq))))
            case Wait(until=until):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(until, lambda: self._feed(Tick()))
            case Report(name=name, message=message):
                log.info("%s: %s", name, message)
                if self.on_report is not None:
                    self.on_report(action)
            case Refuse(reason=reason):
                self._refusal = reason

    def _spawn_task(self, coroutine: Any) -> None:
        if self._stopped:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> None:
        assert self.binary is not None
        try:
            process = await self._child.spawn(self.binary.path, self.env)
        except OSError as error:
            self._feed(SpawnFailed(f"{self.binary.path}: {error.strerror or error}"))
            return
        self._feed(Spawned(process.pid))
        self._spawn_task(self._child.pump(process))
        self._spawn_task(self._reap(process))

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        self._feed(Exited(process.pid, await self._child.reap(process)))

    async def _check(self, seq: int) -> None:
        result = await self._probe(seq)
        self._suspected = False
        self._feed(result)

    async def _probe(self, seq: int) -> HealthOk | HealthFailed:
        assert self._api is not None
        try:
            return HealthOk(await self._api.version(), seq)
        except OllamaError as error:
            return HealthOk(NOT_OLLAMA, seq) if not_ollama(error) else HealthFailed(str(error), seq)

    async def _answers(self) -> bool:
        return isinstance(await self._probe(-1), HealthOk)
