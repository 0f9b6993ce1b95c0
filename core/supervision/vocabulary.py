"""The vocabulary of Ollama supervision: the policy, the events fed to :func:`core.supervision.machine.step`
and the actions it returns. Pure data; times are seconds on the caller's (monotonic) clock.

The process side answers :class:`Spawn` with :class:`Spawned` or :class:`SpawnFailed`, reports
:class:`Exited` for the pid it spawned, runs one ``GET /api/version`` (at most
:attr:`Policy.health_timeout_s`) per :class:`ScheduleCheck` and sends its result with the same ``seq``,
keeps one timer that the latest :class:`Wait` sets and sends :class:`Tick` when it fires, logs and
publishes each :class:`Report`, and answers a refused request (:class:`Refuse`) with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.supervision.binary import install_hint

State = Literal["not_installed", "stopped", "starting", "running", "unhealthy", "backing-off", "failed", "attached"]
Manage = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class Policy:
    """Timings (seconds) and limits (counts) of supervision."""

    check_interval_s: float = 5.0  # between health checks of a running or attached Ollama
    startup_check_interval_s: float = 0.5  # between health checks while our Ollama starts
    health_timeout_s: float = 2.0  # for the process side: one GET /api/version may take this long
    start_timeout_s: float = 30.0  # a spawned Ollama that has not answered by then is hung
    hang_checks: int = 3  # consecutive failed checks of a live Ollama that make it hung...
    hang_timeout_s: float = 15.0  # ...or this long failing since the first failure
    terminate_grace_s: float = 5.0  # SIGTERM, then SIGKILL this long after
    backoff_initial_s: float = 1.0  # delay before the first restart after a crash...
    backoff_factor: float = 2.0  # ...multiplied by this after each crash...
    backoff_max_s: float = 30.0  # ...up to this
    backoff_reset_after_s: float = 60.0  # healthy this long: the backoff starts again from the initial delay
    crash_limit: int = 5  # this many crashes...
    crash_window_s: float = 120.0  # ...within this window: give up (failed)


POLICY = Policy()


# -- events: what happened ---------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Supervision begins; the process side has looked for the binary and probed the upstream."""

    manage: Manage
    binary_found: bool
    upstream_answers: bool
    upstream: str = "the upstream address"  # for reasons, e.g. "http://127.0.0.1:11434"
    install_hint: str = field(default_factory=install_hint)


@dataclass(frozen=True)
class Spawned:
    """The :class:`Spawn` action started ``ollama serve`` as process ``pid``."""

    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    """The :class:`Spawn` action could not start the process (``error``: the OS's message)."""

    error: str


@dataclass(frozen=True)
class Exited:
    """Our process ``pid`` exited; ``code`` as ``Popen.returncode`` (negative: killed by signal -code)."""

    pid: int
    code: int


NOT_OLLAMA = ""  # the version of a server that answers but is not Ollama (None: not known yet)


@dataclass(frozen=True)
class HealthOk:
    """The check of :class:`ScheduleCheck` ``seq`` got ``GET /api/version`` answered with ``version``, or with
    :data:`NOT_OLLAMA` by a server that is up but is not Ollama (an OpenAI-compatible one: a 404 there)."""

    version: str
    seq: int


@dataclass(frozen=True)
class HealthFailed:
    """The check ``seq`` failed: refused, timed out or a bad answer (``error`` says which)."""

    error: str
    seq: int


@dataclass(frozen=True)
class Tick:
    """Time passed: sent at (or after) the time of the last :class:`Wait`; harmless at any other time."""


@dataclass(frozen=True)
class RestartRequested:
    """The user asked for a restart; the facts are as probed just before (ignored while ours runs)."""

    binary_found: bool = True
    upstream_answers: bool = False


@dataclass(frozen=True)
class StopRequested:
    """Ollacache is shutting down: stop what we started, leave the rest alone."""


@dataclass(frozen=True)
class UserStopRequested:
    """The user asked to stop the Ollama that Ollacache runs: it stays stopped (no restart after a backoff,
    none by a restart request) until :class:`UserStartRequested`."""


@dataclass(frozen=True)
class UserStartRequested:
    """The user asked to start Ollama (again); the facts are as probed just before."""

    binary_found: bool = True
    upstream_answers: bool = False


@dataclass(frozen=True)
class UpstreamFailed:
    """A request through the proxy could not reach Ollama: check it at once rather than at the next interval,
    so that losing it shows within a second."""


Event = (
    Start
    | Spawned
    | SpawnFailed
    | Exited
    | HealthOk
    | HealthFailed
    | Tick
    | RestartRequested
    | StopRequested
    | UserStopRequested
    | UserStartRequested
    | UpstreamFailed
)


# -- actions: what the process side must do -----------------------------------------------------
@dataclass(frozen=True)
class Spawn:
    """Start ``ollama serve`` (binary, environment and log are the process side's); answer with
    :class:`Spawned` or :class:`SpawnFailed`."""


@dataclass(frozen=True)
class Terminate:
    """Send SIGTERM (Windows: terminate) to ``pid``; if it is still alive ``grace_s`` seconds later,
    the :class:`Tick` of the Wait that comes with this action brings a :class:`Kill`."""

    pid: int
    grace_s: float


@dataclass(frozen=True)
class Kill:
    """Send SIGKILL to ``pid`` (and its children, the runners)."""

    pid: int


@dataclass(frozen=True)
class ScheduleCheck:
    """In ``after_s`` seconds, ``GET /api/version`` and send the result with this ``seq``."""

    after_s: float
    seq: int


@dataclass(frozen=True)
class Wait:
    """Send :class:`Tick` at ``until`` (the caller's clock, seconds); replaces any earlier Wait."""

    until: float


@dataclass(frozen=True)
class Report:
    """Something worth a log line and an event on ``/-/events``; ``message`` is the new reason. Names:
    ``ollama_did_spawn``, ``_become_healthy``, ``_become_unhealthy``, ``_hang``, ``_exit`` (a crash),
    ``_fail``, ``_stop``, ``_attach``, ``_detach``, ``_disappear`` (after ``ollama_did``), and
    ``ollama_will_restart``, ``ollama_is_not_installed``, ``ollama_is_not_managed``."""

    name: str
    message: str


@dataclass(frozen=True)
class Refuse:
    """The request (a restart, a user's start or stop, a second Start) is refused for ``reason``: answer 409 with it."""

    reason: str


Action = Spawn | Terminate | Kill | ScheduleCheck | Wait | Report | Refuse
