"""The user's requests to the supervision state machine: restart, stop and start, each accepted or
refused (:class:`~core.supervision.vocabulary.Refuse`, with the reason). Pure, as
:mod:`core.supervision.machine` is, which hands these events here.

Choices made here:

- A user restart resets the crash window and the backoff (the user asked for a fresh try); it restarts
  our Ollama at once (no backoff), re-evaluates from ``backing-off``, ``failed`` or ``stopped``, and is
  refused for an attached Ollama, in ``never`` mode and while shutting down.
- A user's stop (:class:`~core.supervision.vocabulary.UserStopRequested`) holds our Ollama: it is
  terminated (or its pending restart cancelled), ``stopped`` with the reason "stopped by the user", and
  nothing starts it again, neither a backoff nor a restart request (refused, naming the start), until
  :class:`~core.supervision.vocabulary.UserStartRequested`; no health checks run meanwhile, so someone
  else's Ollama appearing at the address is not attached. It is accepted while our Ollama runs, starts,
  backs off or has failed, and refused (with the reason) for an attached Ollama, in ``never`` mode,
  while shutting down, and when nothing of ours runs (stopped with no binary, say). Stopping a held
  Ollama again changes nothing. The hold lasts as long as the engine.
- A user's start re-evaluates as a restart does (binary, something answering) from ``not_installed``,
  ``stopped``, ``failed`` or ``backing-off`` (at once, a fresh crash window), lifts the hold, and is refused while
  our Ollama runs, for an attached one, in ``never`` mode and while shutting down. A start that arrives
  while a stopped Ollama is still being terminated restarts it once it has exited.
"""

from __future__ import annotations

from dataclasses import replace

from core.supervision.record import HELD, Result, Supervision, begin, terminate, to, void
from core.supervision.vocabulary import Policy, Refuse, Report, RestartRequested, UserStartRequested


def restart(sv: Supervision, event: RestartRequested, now: float, p: Policy) -> Result:
    """A restart asked for by the user (the tray, ``POST /-/ollama/restart``)."""
    if sv.stopping:
        return sv, [Refuse("Ollacache is shutting down")]
    if sv.manage == "never":
        return sv, [Refuse("ollama.manage is never: Ollacache does not start or restart Ollama")]
    if sv.state in ("attached", "unhealthy") and not sv.owned:
        return sv, [Refuse(f"the Ollama at {sv.upstream} was not started by Ollacache; restart it yourself")]
    if sv.held:
        return sv, [
            Refuse(
                "Ollama was stopped by the user and stays stopped: start it instead (from the tray or "
                "POST /-/ollama/start)"
            )
        ]
    sv = replace(sv, crash_times=(), backoff_s=p.backoff_initial_s)  # a fresh try
    if sv.owned:
        sv, actions = terminate(replace(sv, reason="restarting at the user's request"), "restart", now, p)
        return sv, [Report("ollama_will_restart", "restart requested by the user"), *actions]
    return _begin_again(sv, event, now, p)


def _begin_again(sv: Supervision, event: RestartRequested | UserStartRequested, now: float, p: Policy) -> Result:
    """Start as :class:`~core.supervision.vocabulary.Start` would, refused with the reason when that neither
    starts our Ollama nor finds one answering (so a user's start is also "detect again" once Ollama is
    installed, or started by someone else)."""
    sv, actions = begin(replace(sv, retry_at=None), event.binary_found, event.upstream_answers, now, p, restart=True)
    return (sv, actions) if sv.state in ("starting", "attached") else (sv, [*actions, Refuse(sv.reason)])


def _refusal(sv: Supervision, verb: str) -> str | None:
    """Why a user's start or stop (``verb``) is refused whatever else holds, or None."""
    if sv.stopping:
        return "Ollacache is shutting down"
    if sv.manage == "never":
        return "ollama.manage is never: Ollacache does not start or stop Ollama"
    if sv.state in ("attached", "unhealthy") and not sv.owned:
        return f"the Ollama at {sv.upstream} was not started by Ollacache (it is attached to it); {verb} it yourself"
    return None


def stop(sv: Supervision, now: float, p: Policy) -> Result:
    """The user's stop: our Ollama is held stopped until the user starts it."""
    if (refusal := _refusal(sv, "stop")) is not None:
        return sv, [Refuse(refusal)]
    if sv.held:
        return sv, []  # already stopped, or being stopped, by the user
    if sv.owned:
        return terminate(replace(sv, held=True, retry_at=None, reason="stopping at the user's request"), "hold", now, p)
    if sv.state in ("backing-off", "failed"):
        return to(replace(void(sv), held=True, retry_at=None), "stopped", HELD, "ollama_did_stop")
    return sv, [Refuse(f"no Ollama started by Ollacache is running ({sv.reason})")]


def start(sv: Supervision, event: UserStartRequested, now: float, p: Policy) -> Result:
    """The user's start: lifts the hold and starts our Ollama, or says why not."""
    if (refusal := _refusal(sv, "start")) is not None:
        return sv, [Refuse(refusal)]
    sv = replace(sv, held=False, crash_times=(), backoff_s=p.backoff_initial_s)  # a fresh try
    if sv.owned and sv.exit_intent == "hold":  # still being stopped: start it again once it has exited
        if sv.pid is None:  # the stop came before the pid, so nothing was sent to it yet
            return replace(sv, exit_intent=None, reason="starting ollama serve"), []
        return replace(sv, exit_intent="restart", reason="restarting at the user's request"), [
            Report("ollama_will_restart", "start requested by the user")
        ]
    if sv.owned:
        return sv, [
            Refuse(
                f"the Ollama started by Ollacache is already {sv.state}"
                + (f" (pid {sv.pid})" if sv.pid is not None else "")
            )
        ]
    return _begin_again(sv, event, now, p)
