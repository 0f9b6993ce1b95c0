"""What supervision knows about the local Ollama (:class:`Supervision`), and the moves every transition
is made of: entering a state with its report, scheduling and superseding health checks, spawning,
terminating for an intent, forgetting an ended process, watching the address, and the first decision of
a start or restart (attach, spawn, or say why neither). Pure, as :mod:`core.supervision.machine` is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from core.supervision.binary import install_hint
from core.supervision.vocabulary import POLICY, Action, Manage, Policy, Report, ScheduleCheck, Spawn, State, Terminate

Intent = Literal["hang", "restart", "hold", "stop"]  # why we terminate our Ollama; the stronger wins
_PRIORITY: dict[Intent, int] = {"hang": 0, "restart": 1, "hold": 2, "stop": 3}
HELD = "stopped by the user; start it again from the tray or with POST /-/ollama/start"


@dataclass(frozen=True)
class Supervision:
    """Everything known about the supervised Ollama; times are the caller's clock, in seconds."""

    state: State = "stopped"
    reason: str = "not started"  # why it is in this state, for people
    manage: Manage = "auto"
    upstream: str = "the upstream address"
    install_hint: str = ""
    owned: bool = False  # a process we spawned may be alive (from Spawn until its Exited)
    pid: int | None = None
    version: str | None = None  # from the last good health check
    started_at: float | None = None  # when our process was spawned, or when we attached
    healthy_since: float | None = None
    restarts: int = 0  # spawns other than the one Start makes
    crash_times: tuple[float, ...] = ()  # crashes within the crash window, oldest first
    backoff_s: float = POLICY.backoff_initial_s  # delay before the restart after the next crash
    retry_at: float | None = None  # backing-off: when the next spawn is due
    failures: int = 0  # consecutive failed health checks
    unhealthy_since: float | None = None
    checks: int = 0  # health checks scheduled so far (the last seq given out)
    check_seq: int | None = None  # seq of the only check whose result counts; None: none outstanding
    exit_intent: Intent | None = None  # set once we decided to terminate our process
    kill_at: float | None = None  # terminating: when to send SIGKILL
    stopping: bool = False  # StopRequested was received
    held: bool = False  # the user stopped our Ollama: nothing starts it until the user does
    last_exit: str | None = None  # how our last process ended, e.g. "exited with status 2"
    check_error: str | None = None  # why the last failed health check failed (the reason says it in words)

    def to_json(self, now: float) -> dict[str, Any]:
        """A JSON-ready snapshot for the dashboard; ``uptime_s`` and ``next_retry_in_s`` are relative to ``now``."""
        data = {key: value for key, value in asdict(self).items() if key not in ("install_hint", "checks", "check_seq")}
        data["uptime_s"] = (
            now - self.started_at
            if self.started_at is not None and self.state in ("starting", "running", "unhealthy", "attached")
            else None
        )
        data["next_retry_in_s"] = max(0.0, self.retry_at - now) if self.retry_at is not None else None
        return data


Result = tuple[Supervision, list[Action]]


def on_its_way(sv: Supervision) -> bool:
    """Whether an Ollama that Ollacache runs is about to answer: starting, backing off before its next
    start, or being replaced after a hang or a restart request. Requests then wait for it."""
    return sv.state in ("starting", "backing-off") or sv.exit_intent in ("hang", "restart")


def begin(sv: Supervision, binary_found: bool, upstream_answers: bool, now: float, p: Policy, restart: bool) -> Result:
    """Decide between attaching, starting, and giving a reason why neither (no process of ours runs)."""
    if upstream_answers and sv.manage == "always":
        return to(
            void(sv),
            "failed",
            f"address in use: something already answers at {sv.upstream} and "
            "ollama.manage is always; stop it, or set ollama.manage to auto to use it",
            "ollama_did_fail",
        )
    if upstream_answers:
        sv = replace(sv, started_at=now, version=None)
        sv, actions = to(
            sv,
            "attached",
            f"attached to the Ollama already running at {sv.upstream}; Ollacache will not stop it",
            "ollama_did_attach",
        )
        return check(sv, 0.0, actions)
    if sv.manage == "never":
        return watch(
            sv, f"not managed (ollama.manage is never) and nothing answers at {sv.upstream}", p, "ollama_is_not_managed"
        )
    if not binary_found:  # an expected state before Ollama is installed, not a failure
        reason = f"Ollama is not installed: no Ollama program was found. {sv.install_hint or install_hint()}"
        return watch(sv, reason, p, "ollama_is_not_installed", state="not_installed")
    return spawn(sv, now, restart)


def spawn(sv: Supervision, now: float, restart: bool) -> Result:
    """Start our Ollama (``restart``: counted in ``restarts``)."""
    sv = replace(
        void(sv),
        state="starting",
        reason="starting ollama serve",
        owned=True,
        pid=None,
        started_at=now,
        healthy_since=None,
        version=None,
        retry_at=None,
        failures=0,
        unhealthy_since=None,
        exit_intent=None,
        kill_at=None,
        restarts=sv.restarts + restart,
    )
    return sv, [Spawn()]


def terminate(sv: Supervision, intent: Intent, now: float, p: Policy) -> Result:
    """Ask our process to end for ``intent``; the Terminate is sent once, the strongest intent is kept."""
    if sv.exit_intent is not None:
        stronger = _PRIORITY[intent] > _PRIORITY[sv.exit_intent]
        return (replace(sv, exit_intent=intent) if stronger else sv), []
    sv = replace(void(sv), exit_intent=intent)
    if sv.pid is None:
        return sv, []  # Spawned will bring the pid, and the Terminate
    return replace(sv, kill_at=now + p.terminate_grace_s), [Terminate(sv.pid, p.terminate_grace_s)]


def ended(sv: Supervision, how: str) -> Supervision:
    """Our process is gone (or never started): forget it."""
    return replace(
        void(sv),
        owned=False,
        pid=None,
        version=None,
        healthy_since=None,
        failures=0,
        unhealthy_since=None,
        exit_intent=None,
        kill_at=None,
        last_exit=how,
    )


def watch(sv: Supervision, reason: str, p: Policy, name: str, state: State = "stopped") -> Result:
    """``stopped`` (or ``not_installed``) for ``reason``, checking the address now and then so an Ollama that
    appears is attached."""
    sv, actions = to(replace(sv, failures=0, unhealthy_since=None, version=None), state, reason, name)
    return check(sv, p.check_interval_s, actions)


def to(sv: Supervision, state: State, reason: str, name: str) -> Result:
    """Enter ``state`` for ``reason``, reported as the event ``name``."""
    return replace(sv, state=state, reason=reason), [Report(name, reason)]


def void(sv: Supervision) -> Supervision:
    """Supersede any outstanding check: its result will be ignored."""
    return replace(sv, check_seq=None)


def check(sv: Supervision, after_s: float, actions: list[Action]) -> Result:
    """Schedule the next health check; it supersedes any outstanding one."""
    sv = replace(sv, checks=sv.checks + 1, check_seq=sv.checks + 1)
    return sv, [*actions, ScheduleCheck(after_s, sv.checks)]
