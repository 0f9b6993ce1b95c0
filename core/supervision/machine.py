"""Supervising the local Ollama server, as a pure state machine: no I/O, no clock, no threads.

The process side feeds in what happened and carries out what comes back::

    sv, actions = step(sv, event, now)      # now: the caller's monotonic clock, in seconds

The events, the actions and the :class:`Policy` (timings, limits) are in :mod:`core.supervision.vocabulary`
and importable from here too.

Decisions where the issue is silent:

- Only the latest :class:`ScheduleCheck` counts: results carry its ``seq``, others are ignored.
- Any exit that Ollacache did not ask for is a crash, whatever the status (0 included); so is a spawn
  that fails, and a hang (no answer for ``hang_checks`` checks or ``hang_timeout_s``, or none within
  ``start_timeout_s`` of starting), which is terminated, then killed, then restarted with backoff.
  While it is being terminated the state stays ``unhealthy``.
- ``always`` with something else answering at the upstream address: ``failed`` ("address in use"),
  nothing started, nothing watched. ``always`` without a binary: ``failed``. ``auto`` without a binary,
  ``never`` with nothing answering, and an attached Ollama that went away: ``stopped``, and the address
  keeps being checked so that an Ollama started by someone else is attached when it answers. An
  attached Ollama that goes away is never replaced on our own initiative (its owner may be restarting
  it); a user restart then starts ours.
- A user restart resets the crash window and the backoff (the user asked for a fresh try); it restarts
  our Ollama at once (no backoff), re-evaluates from ``backing-off``, ``failed`` or ``stopped``, and is
  refused (:class:`Refuse`) for an attached Ollama, in ``never`` mode and while shutting down.
- ``restarts`` counts every spawn except the one :class:`Start` makes (user restarts included).
- A user's stop (:class:`UserStopRequested`) holds our Ollama: it is terminated (or its pending restart
  cancelled), ``stopped`` with the reason "stopped by the user", and nothing starts it again, neither a
  backoff nor a restart request (refused, naming the start), until :class:`UserStartRequested`; no
  health checks run meanwhile, so someone else's Ollama appearing at the address is not attached. It is
  accepted while our Ollama runs, starts, backs off or has failed, and refused (with the reason) for an
  attached Ollama, in ``never`` mode, while shutting down, and when nothing of ours runs (stopped with
  no binary, say). Stopping a held Ollama again changes nothing. The hold lasts as long as the engine.
- A user's start re-evaluates as a restart does (binary, something answering) from ``stopped``,
  ``failed`` or ``backing-off`` (at once, a fresh crash window), lifts the hold, and is refused while
  our Ollama runs, for an attached one, in ``never`` mode and while shutting down. A start that arrives
  while a stopped Ollama is still being terminated restarts it once it has exited.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from core.supervision.binary import install_hint
from core.supervision.vocabulary import (POLICY, Action, Event, Exited, HealthFailed, HealthOk, Kill, Manage, Policy,
                                     Refuse, Report, RestartRequested, ScheduleCheck, Spawn, Spawned, SpawnFailed,
                                     Start, State, StopRequested, Terminate, Tick, UserStartRequested,
                                     UserStopRequested, Wait)

__all__ = ["Action", "Event", "Exited", "HealthFailed", "HealthOk", "Kill", "Manage", "POLICY", "Policy", "Refuse",
           "Report", "RestartRequested", "ScheduleCheck", "Spawn", "Spawned", "SpawnFailed", "Start", "State",
           "StopRequested", "Supervision", "Terminate", "Tick", "UserStartRequested", "UserStopRequested", "Wait",
           "step"]

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

    def to_json(self, now: float) -> dict[str, Any]:
        """A JSON-ready snapshot for the dashboard; ``uptime_s`` and ``next_retry_in_s`` are relative to ``now``."""
        data = {key: value for key, value in asdict(self).items() if key not in ("install_hint", "checks", "check_seq")}
        data["uptime_s"] = (now - self.started_at if self.started_at is not None
                            and self.state in ("starting", "running", "unhealthy", "attached") else None)
        data["next_retry_in_s"] = max(0.0, self.retry_at - now) if self.retry_at is not None else None
        return data


_Result = tuple[Supervision, list[Action]]


def on_its_way(sv: Supervision) -> bool:
    """Whether an Ollama that Ollacache runs is about to answer: starting, backing off before its next
    start, or being replaced after a hang or a restart request. Requests then wait for it."""
    return sv.state in ("starting", "backing-off") or sv.exit_intent in ("hang", "restart")


def step(sv: Supervision, event: Event, now: float, policy: Policy = POLICY) -> _Result:
    """Apply ``event`` at time ``now`` (seconds): the new state and the actions to carry out, in order."""
    deadline_before = _deadline(sv, policy)
    if (sv.state == "running" and sv.healthy_since is not None
            and now - sv.healthy_since >= policy.backoff_reset_after_s):
        sv = replace(sv, backoff_s=policy.backoff_initial_s)  # a healthy minute forgives earlier crashes
    sv, actions = _handle(sv, event, now, policy)
    deadline = _deadline(sv, policy)
    if deadline is not None and (deadline != deadline_before or isinstance(event, Tick)):
        actions.append(Wait(deadline))
    return sv, actions


def _handle(sv: Supervision, event: Event, now: float, p: Policy) -> _Result:
    match event:
        case Start():
            if sv.owned:
                return sv, [Refuse("the Ollama started by Ollacache is still running")]
            fresh = Supervision(manage=event.manage, upstream=event.upstream, install_hint=event.install_hint,
                                restarts=sv.restarts, checks=sv.checks, backoff_s=p.backoff_initial_s)
            return _begin(fresh, event.binary_found, event.upstream_answers, now, p, restart=False)
        case Spawned(pid) if sv.owned and sv.pid is None:
            sv = replace(sv, pid=pid)
            if sv.exit_intent is not None:  # stop or restart arrived before the pid
                return _terminate(replace(sv, exit_intent=None), sv.exit_intent, now, p)
            return _check(sv, p.startup_check_interval_s, [Report("ollama_did_spawn", f"started (pid {pid})")])
        case SpawnFailed(error) if sv.owned and sv.pid is None:
            if sv.stopping:
                return _to(_ended(sv, f"could not start: {error}"), "stopped", "stopped", "ollama_did_stop")
            if sv.held:
                return _to(_ended(sv, f"could not start: {error}"), "stopped", HELD, "ollama_did_stop")
            return _crash(_ended(sv, f"could not start: {error}"), now, p)
        case Exited(pid, code) if sv.owned and pid == sv.pid:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            intent, hang = sv.exit_intent, sv.reason
            sv = _ended(sv, how)
            if intent == "stop" or sv.stopping:
                return _to(sv, "stopped", f"stopped by Ollacache ({how})", "ollama_did_stop")
            if intent == "hold":
                return _to(sv, "stopped", HELD, "ollama_did_stop")
            if intent == "restart":
                return _spawn(sv, now, restart=True)
            return _crash(sv, now, p, f"{hang}; it {how}" if intent == "hang" else how)
        case HealthOk(version, seq) if seq == sv.check_seq:
            return _health_ok(replace(sv, version=version, failures=0, unhealthy_since=None), now, p)
        case HealthFailed(error, seq) if seq == sv.check_seq:
            return _health_failed(sv, error, now, p)
        case Tick():
            return _tick(sv, now, p)
        case RestartRequested():
            return _restart(sv, event, now, p)
        case UserStopRequested():
            return _user_stop(sv, now, p)
        case UserStartRequested():
            return _user_start(sv, event, now, p)
        case StopRequested() if not sv.stopping:
            sv = replace(_void(sv), stopping=True, retry_at=None)
            if sv.owned:
                return _terminate(replace(sv, reason="stopping"), "stop", now, p)
            if sv.state in ("attached", "unhealthy"):
                return _to(sv, "stopped", f"left running: the Ollama at {sv.upstream} was not started by "
                                          "Ollacache", "ollama_did_detach")
            return _to(sv, "stopped", "stopped", "ollama_did_stop")
    return sv, []  # stale or irrelevant: a result of a superseded check, an exit of no process of ours


def _begin(sv: Supervision, binary_found: bool, upstream_answers: bool, now: float, p: Policy,
           restart: bool) -> _Result:
    """Decide between attaching, starting, and giving a reason why neither (no process of ours runs)."""
    if upstream_answers and sv.manage == "always":
        return _to(_void(sv), "failed", f"address in use: something already answers at {sv.upstream} and "
                   "ollama.manage is always; stop it, or set ollama.manage to auto to use it", "ollama_did_fail")
    if upstream_answers:
        sv = replace(sv, started_at=now, version=None)
        sv, actions = _to(sv, "attached", f"attached to the Ollama already running at {sv.upstream}; Ollacache "
                          "will not stop it", "ollama_did_attach")
        return _check(sv, 0.0, actions)
    if sv.manage == "never":
        return _watch(sv, f"not managed (ollama.manage is never) and nothing answers at {sv.upstream}", p,
                      "ollama_is_not_managed")
    if not binary_found:
        reason = f"binary not found: {sv.install_hint or install_hint()}"
        if sv.manage == "always":
            return _to(_void(sv), "failed", reason, "ollama_binary_not_found")
        return _watch(sv, reason, p, "ollama_binary_not_found")
    return _spawn(sv, now, restart)


def _spawn(sv: Supervision, now: float, restart: bool) -> _Result:
    sv = replace(_void(sv), state="starting", reason="starting ollama serve", owned=True, pid=None,
                 started_at=now, healthy_since=None, version=None, retry_at=None, failures=0,
                 unhealthy_since=None, exit_intent=None, kill_at=None, restarts=sv.restarts + restart)
    return sv, [Spawn()]


def _health_ok(sv: Supervision, now: float, p: Policy) -> _Result:
    actions: list[Action] = []
    if sv.state in ("starting", "unhealthy") and sv.owned and sv.exit_intent is None:
        sv, actions = _to(replace(sv, healthy_since=now), "running", f"answering (version {sv.version})",
                          "ollama_did_become_healthy")
    elif sv.state in ("stopped", "unhealthy") and not sv.owned and not sv.stopping and not sv.held:
        sv, actions = _to(replace(sv, started_at=now if sv.state == "stopped" else sv.started_at), "attached",
                          f"attached to the Ollama at {sv.upstream} (not started by Ollacache)",
                          "ollama_did_attach")
    return _check(sv, p.check_interval_s, actions)


def _health_failed(sv: Supervision, error: str, now: float, p: Policy) -> _Result:
    if sv.state == "starting":
        if now - (sv.started_at or now) >= p.start_timeout_s:
            return _hang(sv, f"hung: no answer within {p.start_timeout_s:g} s of starting ({error})", now, p)
        return _check(sv, p.startup_check_interval_s, [])
    if sv.state in ("running", "attached"):
        sv, actions = _to(replace(sv, failures=1, unhealthy_since=now, healthy_since=None), "unhealthy",
                          f"not answering /api/version: {error}", "ollama_did_become_unhealthy")
        return _check(sv, p.check_interval_s, actions)
    if sv.state == "unhealthy":
        sv = replace(sv, failures=sv.failures + 1, reason=f"not answering /api/version: {error}")
        if sv.owned and (sv.failures >= p.hang_checks or now - (sv.unhealthy_since or now) >= p.hang_timeout_s):
            return _hang(sv, f"hung: {sv.failures} health checks failed (last: {error})", now, p)
        if not sv.owned and sv.failures >= p.hang_checks:
            return _watch(sv, f"the Ollama at {sv.upstream} stopped answering ({error}); it was not started "
                          "by Ollacache, which checks for it again", p, "ollama_did_disappear")
    return _check(sv, p.check_interval_s, [])  # stopped and watching, or still unhealthy


def _tick(sv: Supervision, now: float, p: Policy) -> _Result:
    if sv.kill_at is not None and now >= sv.kill_at and sv.pid is not None:
        return replace(sv, kill_at=None), [Kill(sv.pid)]
    if sv.state == "backing-off" and sv.retry_at is not None and now >= sv.retry_at:
        return _spawn(sv, now, restart=True)
    if sv.owned and sv.pid is not None and sv.exit_intent is None:
        if sv.state == "starting" and now - (sv.started_at or now) >= p.start_timeout_s:
            return _hang(sv, f"hung: no answer within {p.start_timeout_s:g} s of starting", now, p)
        if sv.state == "unhealthy" and now - (sv.unhealthy_since or now) >= p.hang_timeout_s:
            return _hang(sv, f"hung: no answer to /api/version for {p.hang_timeout_s:g} s", now, p)
    return sv, []


def _restart(sv: Supervision, event: RestartRequested, now: float, p: Policy) -> _Result:
    if sv.stopping:
        return sv, [Refuse("Ollacache is shutting down")]
    if sv.manage == "never":
        return sv, [Refuse("ollama.manage is never: Ollacache does not start or restart Ollama")]
    if sv.state in ("attached", "unhealthy") and not sv.owned:
        return sv, [Refuse(f"the Ollama at {sv.upstream} was not started by Ollacache; restart it yourself")]
    if sv.held:
        return sv, [Refuse("Ollama was stopped by the user and stays stopped: start it instead (from the tray or "
                           "POST /-/ollama/start)")]
    sv = replace(sv, crash_times=(), backoff_s=p.backoff_initial_s)  # a fresh try
    if sv.owned:
        sv, actions = _terminate(replace(sv, reason="restarting at the user's request"), "restart", now, p)
        return sv, [Report("ollama_will_restart", "restart requested by the user"), *actions]
    sv, actions = _begin(replace(sv, retry_at=None), event.binary_found, event.upstream_answers, now, p,
                         restart=True)
    return (sv, actions) if sv.state == "starting" else (sv, [*actions, Refuse(sv.reason)])


def _user_refusal(sv: Supervision, verb: str) -> str | None:
    """Why a user's start or stop (``verb``) is refused whatever else holds, or None."""
    if sv.stopping:
        return "Ollacache is shutting down"
    if sv.manage == "never":
        return "ollama.manage is never: Ollacache does not start or stop Ollama"
    if sv.state in ("attached", "unhealthy") and not sv.owned:
        return (f"the Ollama at {sv.upstream} was not started by Ollacache (it is attached to it); "
                f"{verb} it yourself")
    return None


def _user_stop(sv: Supervision, now: float, p: Policy) -> _Result:
    if (refusal := _user_refusal(sv, "stop")) is not None:
        return sv, [Refuse(refusal)]
    if sv.held:
        return sv, []  # already stopped, or being stopped, by the user
    if sv.owned:
        return _terminate(replace(sv, held=True, retry_at=None, reason="stopping at the user's request"), "hold",
                          now, p)
    if sv.state in ("backing-off", "failed"):
        return _to(replace(_void(sv), held=True, retry_at=None), "stopped", HELD, "ollama_did_stop")
    return sv, [Refuse(f"no Ollama started by Ollacache is running ({sv.reason})")]


def _user_start(sv: Supervision, event: UserStartRequested, now: float, p: Policy) -> _Result:
    if (refusal := _user_refusal(sv, "start")) is not None:
        return sv, [Refuse(refusal)]
    sv = replace(sv, held=False, crash_times=(), backoff_s=p.backoff_initial_s)  # a fresh try
    if sv.owned and sv.exit_intent == "hold":  # still being stopped: start it again once it has exited
        if sv.pid is None:  # the stop came before the pid, so nothing was sent to it yet
            return replace(sv, exit_intent=None, reason="starting ollama serve"), []
        return replace(sv, exit_intent="restart", reason="restarting at the user's request"), [
            Report("ollama_will_restart", "start requested by the user")]
    if sv.owned:
        return sv, [Refuse(f"the Ollama started by Ollacache is already {sv.state}"
                           + (f" (pid {sv.pid})" if sv.pid is not None else ""))]
    sv, actions = _begin(replace(sv, retry_at=None), event.binary_found, event.upstream_answers, now, p,
                         restart=True)
    return (sv, actions) if sv.state == "starting" else (sv, [*actions, Refuse(sv.reason)])


def _hang(sv: Supervision, reason: str, now: float, p: Policy) -> _Result:
    sv, actions = _to(sv, "unhealthy", reason, "ollama_did_hang")
    sv, more = _terminate(sv, "hang", now, p)
    return sv, actions + more


def _terminate(sv: Supervision, intent: Intent, now: float, p: Policy) -> _Result:
    """Ask our process to end for ``intent``; the Terminate is sent once, the strongest intent is kept."""
    if sv.exit_intent is not None:
        stronger = _PRIORITY[intent] > _PRIORITY[sv.exit_intent]
        return (replace(sv, exit_intent=intent) if stronger else sv), []
    sv = replace(_void(sv), exit_intent=intent)
    if sv.pid is None:
        return sv, []  # Spawned will bring the pid, and the Terminate
    return replace(sv, kill_at=now + p.terminate_grace_s), [Terminate(sv.pid, p.terminate_grace_s)]


def _crash(sv: Supervision, now: float, p: Policy, how: str | None = None) -> _Result:
    how = how or sv.last_exit or "crashed"
    recent = tuple(t for t in sv.crash_times if now - t <= p.crash_window_s) + (now,)
    sv = replace(sv, crash_times=recent)
    if len(recent) >= p.crash_limit:
        return _to(sv, "failed", f"crashed {len(recent)} times within {p.crash_window_s:g} s, not restarting "
                   f"(last: {how}); restart it from the tray or POST /-/ollama/restart", "ollama_did_fail")
    delay = sv.backoff_s
    sv = replace(sv, retry_at=now + delay, backoff_s=min(delay * p.backoff_factor, p.backoff_max_s))
    return _to(sv, "backing-off", f"{how}; restarting in {delay:g} s", "ollama_did_exit")


def _ended(sv: Supervision, how: str) -> Supervision:
    """Our process is gone (or never started): forget it."""
    return replace(_void(sv), owned=False, pid=None, version=None, healthy_since=None, failures=0,
                   unhealthy_since=None, exit_intent=None, kill_at=None, last_exit=how)


def _watch(sv: Supervision, reason: str, p: Policy, name: str) -> _Result:
    """``stopped`` for ``reason``, checking the address now and then so an Ollama that appears is attached."""
    sv, actions = _to(replace(sv, failures=0, unhealthy_since=None, version=None), "stopped", reason, name)
    return _check(sv, p.check_interval_s, actions)


def _to(sv: Supervision, state: State, reason: str, name: str) -> _Result:
    return replace(sv, state=state, reason=reason), [Report(name, reason)]


def _void(sv: Supervision) -> Supervision:
    """Supersede any outstanding check: its result will be ignored."""
    return replace(sv, check_seq=None)


def _check(sv: Supervision, after_s: float, actions: list[Action]) -> _Result:
    """Schedule the next health check; it supersedes any outstanding one."""
    sv = replace(sv, checks=sv.checks + 1, check_seq=sv.checks + 1)
    return sv, [*actions, ScheduleCheck(after_s, sv.checks)]


def _deadline(sv: Supervision, p: Policy) -> float | None:
    """When the next :class:`Tick` is due, if anything is waiting on time."""
    if sv.kill_at is not None:
        return sv.kill_at
    if sv.state == "backing-off":
        return sv.retry_at
    if sv.owned and sv.pid is not None and sv.exit_intent is None and sv.started_at is not None:
        if sv.state == "starting":
            return sv.started_at + p.start_timeout_s
        if sv.state == "unhealthy" and sv.unhealthy_since is not None:
            return sv.unhealthy_since + p.hang_timeout_s
    return None
