"""Supervising the local Ollama server, as a pure state machine: no I/O, no clock, no threads.

The process side feeds in what happened and carries out what comes back::

    sv, actions = step(sv, event, now)      # now: the caller's monotonic clock, in seconds

The events, the actions and the :class:`Policy` (timings, limits) are in :mod:`core.supervision.vocabulary`
and importable from here too; the record of what is known, :class:`Supervision`, and the moves every
transition is made of are in :mod:`core.supervision.record`; the user's restart, stop and start in
:mod:`core.supervision.user`. What lives here: :func:`step`, which hands each event to its transition,
and the transitions of our process's life (spawned, exited, health checked, timed out, crashed) with the
timers they set.

Choices made here:

- Only the latest :class:`ScheduleCheck` counts: results carry its ``seq``, others are ignored.
- Any exit that Ollacache did not ask for is a crash, whatever the status (0 included); so is a spawn
  that fails, and a hang (no answer for ``hang_checks`` checks or ``hang_timeout_s``, or none within
  ``start_timeout_s`` of starting), which is terminated, then killed, then restarted with backoff.
  While it is being terminated the state stays ``unhealthy``.
- ``always`` with something else answering at the upstream address: ``failed`` ("address in use"),
  nothing started, nothing watched. No binary and nothing answering (``auto`` or ``always``):
  ``not_installed``, an expected state, not a failure. That, ``never`` with nothing answering, and an
  attached Ollama that went away: the address keeps being checked so that an Ollama started by someone
  else is attached when it answers (``stopped`` but for the first). An
  attached Ollama that goes away is never replaced on our own initiative (its owner may be restarting
  it); a user restart then starts ours.
- ``restarts`` counts every spawn except the one :class:`Start` makes (user restarts included).
- The user's requests decide as :mod:`core.supervision.user` says.
"""

from __future__ import annotations

from dataclasses import replace

from core.supervision import user
from core.supervision.record import (
    HELD,
    Result,
    Supervision,
    begin,
    check,
    ended,
    on_its_way,
    spawn,
    terminate,
    to,
    void,
    watch,
)
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
    State,
    StopRequested,
    Terminate,
    Tick,
    UpstreamFailed,
    UserStartRequested,
    UserStopRequested,
    Wait,
)

__all__ = [
    "HELD",
    "Action",
    "Event",
    "Exited",
    "HealthFailed",
    "HealthOk",
    "Kill",
    "Manage",
    "POLICY",
    "Policy",
    "Refuse",
    "Report",
    "RestartRequested",
    "ScheduleCheck",
    "Spawn",
    "Spawned",
    "SpawnFailed",
    "Start",
    "State",
    "StopRequested",
    "Supervision",
    "Terminate",
    "Tick",
    "UpstreamFailed",
    "UserStartRequested",
    "UserStopRequested",
    "Wait",
    "on_its_way",
    "step",
]


def step(sv: Supervision, event: Event, now: float, policy: Policy = POLICY) -> Result:
    """Apply ``event`` at time ``now`` (seconds): the new state and the actions to carry out, in order."""
    deadline_before = _deadline(sv, policy)
    if (
        sv.state == "running"
        and sv.healthy_since is not None
        and now - sv.healthy_since >= policy.backoff_reset_after_s
    ):
        sv = replace(sv, backoff_s=policy.backoff_initial_s)  # a healthy minute forgives earlier crashes
    sv, actions = _handle(sv, event, now, policy)
    deadline = _deadline(sv, policy)
    if deadline is not None and (deadline != deadline_before or isinstance(event, Tick)):
        actions.append(Wait(deadline))
    return sv, actions


def _handle(sv: Supervision, event: Event, now: float, p: Policy) -> Result:
    match event:
        case Start():
            if sv.owned:
                return sv, [Refuse("the Ollama started by Ollacache is still running")]
            fresh = Supervision(
                manage=event.manage,
                upstream=event.upstream,
                install_hint=event.install_hint,
                restarts=sv.restarts,
                checks=sv.checks,
                backoff_s=p.backoff_initial_s,
            )
            return begin(fresh, event.binary_found, event.upstream_answers, now, p, restart=False)
        case Spawned(pid) if sv.owned and sv.pid is None:
            sv = replace(sv, pid=pid)
            if sv.exit_intent is not None:  # stop or restart arrived before the pid
                return terminate(replace(sv, exit_intent=None), sv.exit_intent, now, p)
            return check(sv, p.startup_check_interval_s, [Report("ollama_did_spawn", f"started (pid {pid})")])
        case SpawnFailed(error) if sv.owned and sv.pid is None:
            if sv.stopping:
                return to(ended(sv, f"could not start: {error}"), "stopped", "stopped", "ollama_did_stop")
            if sv.held:
                return to(ended(sv, f"could not start: {error}"), "stopped", HELD, "ollama_did_stop")
            return _crash(ended(sv, f"could not start: {error}"), now, p)
        case Exited(pid, code) if sv.owned and pid == sv.pid:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            intent, hang = sv.exit_intent, sv.reason
            sv = ended(sv, how)
            if intent == "stop" or sv.stopping:
                return to(sv, "stopped", f"stopped by Ollacache ({how})", "ollama_did_stop")
            if intent == "hold":
                return to(sv, "stopped", HELD, "ollama_did_stop")
            if intent == "restart":
                return spawn(sv, now, restart=True)
            return _crash(sv, now, p, f"{hang}; it {how}" if intent == "hang" else how)
        case HealthOk(version, seq) if seq == sv.check_seq and version == NOT_OLLAMA and sv.owned:
            # another program answers on the port our Ollama was started for: ours is not the one answering
            return _health_failed(sv, f"a server that is not Ollama answers at {sv.upstream}", now, p)
        case HealthOk(version, seq) if seq == sv.check_seq:
            return _health_ok(replace(sv, version=version, failures=0, unhealthy_since=None), now, p)
        case HealthFailed(error, seq) if seq == sv.check_seq:
            return _health_failed(sv, error, now, p)
        case Tick():
            return _tick(sv, now, p)
        case RestartRequested():
            return user.restart(sv, event, now, p)
        case UserStopRequested():
            return user.stop(sv, now, p)
        case UserStartRequested():
            return user.start(sv, event, now, p)
        case UpstreamFailed() if sv.state in ("running", "attached") and not sv.stopping and sv.exit_intent is None:
            return check(sv, 0.0, [])  # supersedes the check due later
        case StopRequested() if not sv.stopping:
            sv = replace(void(sv), stopping=True, retry_at=None)
            if sv.owned:
                return terminate(replace(sv, reason="stopping"), "stop", now, p)
            if sv.state in ("attached", "unhealthy"):
                return to(
                    sv,
                    "stopped",
                    f"left running: the Ollama at {sv.upstream} was not started by Ollacache",
                    "ollama_did_detach",
                )
            return to(sv, "stopped", "stopped", "ollama_did_stop")
    return sv, []  # stale or irrelevant: a result of a superseded check, an exit of no process of ours


def _health_ok(sv: Supervision, now: float, p: Policy) -> Result:
    actions: list[Action] = []
    if sv.state in ("starting", "unhealthy") and sv.owned and sv.exit_intent is None:
        answering = f"answering (version {sv.version})" if sv.version != NOT_OLLAMA else "answering"
        sv, actions = to(replace(sv, healthy_since=now), "running", answering, "ollama_did_become_healthy")
    elif sv.state in ("stopped", "not_installed", "unhealthy") and not sv.owned and not sv.stopping and not sv.held:
        sv, actions = to(
            replace(sv, started_at=now if sv.state == "stopped" else sv.started_at),
            "attached",
            not_ollama(sv)
            if sv.version == NOT_OLLAMA
            else f"attached to the Ollama at {sv.upstream} (not started by Ollacache)",
            "ollama_did_attach",
        )
    elif sv.state == "attached" and (sv.version == NOT_OLLAMA) != (sv.reason == not_ollama(sv)):
        # what answers turned out not to be Ollama, or an Ollama took the place of what was not
        reason = not_ollama(sv) if sv.version == NOT_OLLAMA else f"attached to the Ollama at {sv.upstream}"
        sv, actions = to(sv, "attached", reason, "ollama_did_attach")
    return check(sv, p.check_interval_s, actions)


def not_ollama(sv: Supervision) -> str:
    """Why a server that answers at the upstream, but not as Ollama, is used as it is."""
    return (
        f"a server that is not Ollama answers at {sv.upstream} (it has no /api/version: an OpenAI-compatible server,"
        " say); requests are forwarded to it, and Ollacache neither starts nor stops Ollama there"
    )


def _health_failed(sv: Supervision, error: str, now: float, p: Policy) -> Result:
    if sv.state == "starting":
        if now - (sv.started_at or now) >= p.start_timeout_s:
            return _hang(sv, f"hung: no answer within {p.start_timeout_s:g} s of starting ({error})", now, p)
        return check(sv, p.startup_check_interval_s, [])
    if sv.state in ("running", "attached"):
        sv, actions = to(
            replace(sv, failures=1, unhealthy_since=now, healthy_since=None, check_error=error),
            "unhealthy",
            f"Ollama stopped answering at {sv.upstream}; cached answers are still served",
            "ollama_did_become_unhealthy",
        )
        return check(sv, p.check_interval_s, actions)
    if sv.state == "unhealthy":
        sv = replace(sv, failures=sv.failures + 1, check_error=error)  # the reason in words stays
        if sv.owned and (sv.failures >= p.hang_checks or now - (sv.unhealthy_since or now) >= p.hang_timeout_s):
            return _hang(sv, f"hung: {sv.failures} health checks failed (last: {error})", now, p)
        if not sv.owned and sv.failures >= p.hang_checks:
            return watch(
                sv,
                f"the Ollama at {sv.upstream} stopped answering; it was not started by Ollacache, "
                "which looks for it again (cached answers are still served)",
                p,
                "ollama_did_disappear",
            )
    return check(sv, p.check_interval_s, [])  # stopped and watching, or still unhealthy


def _tick(sv: Supervision, now: float, p: Policy) -> Result:
    if sv.kill_at is not None and now >= sv.kill_at and sv.pid is not None:
        return replace(sv, kill_at=None), [Kill(sv.pid)]
    if sv.state == "backing-off" and sv.retry_at is not None and now >= sv.retry_at:
        return spawn(sv, now, restart=True)
    if sv.owned and sv.pid is not None and sv.exit_intent is None:
        if sv.state == "starting" and now - (sv.started_at or now) >= p.start_timeout_s:
            return _hang(sv, f"hung: no answer within {p.start_timeout_s:g} s of starting", now, p)
        if sv.state == "unhealthy" and now - (sv.unhealthy_since or now) >= p.hang_timeout_s:
            return _hang(sv, f"hung: no answer to /api/version for {p.hang_timeout_s:g} s", now, p)
    return sv, []


def _hang(sv: Supervision, reason: str, now: float, p: Policy) -> Result:
    sv, actions = to(sv, "unhealthy", reason, "ollama_did_hang")
    sv, more = terminate(sv, "hang", now, p)
    return sv, actions + more


def _crash(sv: Supervision, now: float, p: Policy, how: str | None = None) -> Result:
    how = how or sv.last_exit or "crashed"
    recent = tuple(t for t in sv.crash_times if now - t <= p.crash_window_s) + (now,)
    sv = replace(sv, crash_times=recent)
    if len(recent) >= p.crash_limit:
        return to(
            sv,
            "failed",
            f"crashed {len(recent)} times within {p.crash_window_s:g} s, not restarting "
            f"(last: {how}); restart it from the tray or POST /-/ollama/restart",
            "ollama_did_fail",
        )
    delay = sv.backoff_s
    sv = replace(sv, retry_at=now + delay, backoff_s=min(delay * p.backoff_factor, p.backoff_max_s))
    return to(sv, "backing-off", f"{how}; restarting in {delay:g} s", "ollama_did_exit")


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
