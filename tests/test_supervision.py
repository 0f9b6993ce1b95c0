"""The supervision state machine, played event by event like mitmproxy's Playbook: no sockets, no clock.

Each line feeds one event at a time (seconds) and states the state and the actions expected; Reports
are collected apart (``pb.reports``) so the sequences read as what the process side must do.
"""

from __future__ import annotations

import json
from unittest.mock import ANY

from core.supervision.machine import (
    Action,
    Event,
    Exited,
    HealthFailed,
    HealthOk,
    Kill,
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
    Supervision,
    Terminate,
    Tick,
    UpstreamFailed,
    UserStartRequested,
    Wait,
    step,
)

UP = "http://127.0.0.1:11434"


def check(after_s: float) -> ScheduleCheck:
    """A ScheduleCheck with any seq (the Playbook answers with whatever seq the machine chose)."""
    return ScheduleCheck(after_s, ANY)


class Playbook:
    """Feeds events to :func:`step` and checks the state and the non-Report actions after each."""

    def __init__(self, sv: Supervision | None = None) -> None:
        self.sv = sv or Supervision()
        self.reports: list[Report] = []
        self.seq = -1  # of the last ScheduleCheck: results answer it, stale or not

    def __call__(self, at: float, event: Event, state: State, *expected: Action) -> list[Action]:
        self.sv, actions = step(self.sv, event, at)
        self.reports += [action for action in actions if isinstance(action, Report)]
        self.seq = next((action.seq for action in actions if isinstance(action, ScheduleCheck)), self.seq)
        done = [action for action in actions if not isinstance(action, Report)]
        assert (self.sv.state, done) == (state, list(expected)), f"{event} at {at}s: {self.sv.reason}"
        json.dumps(self.sv.to_json(at))
        return actions

    def ok(self, at: float, state: State, *expected: Action) -> list[Action]:
        """The last health check scheduled got an answer."""
        return self(at, HealthOk("0.12.0", self.seq), state, *expected)

    def fail(self, at: float, state: State, *expected: Action, error: str = "timed out") -> list[Action]:
        """The last health check scheduled failed."""
        return self(at, HealthFailed(error, self.seq), state, *expected)

    def names(self) -> list[str]:
        return [report.name for report in self.reports]


def started(pid: int = 42, at: float = 0.0) -> Playbook:
    """A Playbook whose own Ollama (``pid``) was started at ``at`` and answered half a second later."""
    pb = Playbook()
    pb(at, Start("auto", binary_found=True, upstream_answers=False, upstream=UP), "starting", Spawn())
    pb(at, Spawned(pid), "starting", check(0.5), Wait(at + 30))
    pb.ok(at + 0.5, "running", check(5))
    return pb


def test_auto_attaches_to_an_ollama_that_already_answers_and_follows_its_health() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    pb.ok(0.01, "attached", check(5))
    assert (pb.sv.version, pb.sv.owned, pb.sv.pid) == ("0.12.0", False, None)
    assert "attached" in pb.sv.reason and UP in pb.sv.reason
    pb.fail(5, "unhealthy", check(5))
    pb.ok(10, "attached", check(5))
    for at in (15, 20):
        pb.fail(at, "unhealthy", check(5))
    pb.fail(25, "stopped", check(5), error="connection refused")  # gone: watched, never replaced
    assert "stopped answering" in pb.sv.reason
    pb.fail(30, "stopped", check(5))
    pb.ok(35, "attached", check(5))  # back again
    assert pb.names() == [
        "ollama_did_attach",
        "ollama_did_become_unhealthy",
        "ollama_did_attach",
        "ollama_did_become_unhealthy",
        "ollama_did_disappear",
        "ollama_did_attach",
    ]


def test_a_server_that_answers_but_is_not_ollama_is_used_as_it_is_and_never_replaced() -> None:
    """llama.cpp's server, LM Studio or vLLM at the upstream: a 404 to /api/version is an answer (the process side
    reports it as the version ""), so nothing is started on their port and their own health is followed."""
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    pb(0.01, HealthOk("", pb.seq), "attached", check(5))
    assert (pb.sv.version, pb.sv.owned, pb.sv.pid) == ("", False, None)
    assert "not Ollama" in pb.sv.reason and UP in pb.sv.reason
    pb(5, HealthOk("", pb.seq), "attached", check(5))  # said once, not at every check
    pb.fail(10, "unhealthy", check(5))
    pb(15, HealthOk("", pb.seq), "attached", check(5))
    assert "not Ollama" in pb.sv.reason
    assert pb.names() == ["ollama_did_attach", "ollama_did_attach", "ollama_did_become_unhealthy", "ollama_did_attach"]


def test_an_ollama_that_takes_the_place_of_a_server_that_was_not_ollama_is_named_as_ollama() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    pb(0.01, HealthOk("", pb.seq), "attached", check(5))
    pb.ok(5, "attached", check(5))  # a gateway's 404 gave way to the Ollama behind it
    assert pb.sv.version == "0.12.0" and "not Ollama" not in pb.sv.reason and UP in pb.sv.reason


def test_a_server_answering_on_the_port_of_our_starting_ollama_does_not_make_it_healthy() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False, upstream=UP), "starting", Spawn())
    pb(0.1, Spawned(42), "starting", check(0.5), Wait(30))
    pb(0.6, HealthOk("", pb.seq), "starting", check(0.5))  # another program took the port first
    assert pb.sv.healthy_since is None and "ollama_did_become_healthy" not in pb.names()


def test_auto_starts_ollama_when_nothing_answers_and_it_becomes_healthy() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False), "starting", Spawn())
    pb(0.1, Spawned(42), "starting", check(0.5), Wait(30))  # 30 s from the Spawn
    pb.fail(0.6, "starting", check(0.5), error="connection refused")
    pb.ok(1.1, "running", check(5))
    pb.ok(6.1, "running", check(5))
    view = pb.sv.to_json(7.0)
    assert (view["state"], view["pid"], view["version"], view["owned"], view["restarts"]) == (
        "running",
        42,
        "0.12.0",
        True,
        0,
    )
    assert view["uptime_s"] == 7.0 and view["healthy_since"] == 1.1 and view["next_retry_in_s"] is None
    assert pb.names() == ["ollama_did_spawn", "ollama_did_become_healthy"]


def test_crashes_back_off_1_2_4_8_16_30_30_seconds() -> None:
    pb = started(pid=100)
    t = 0.0
    for n, delay in enumerate([1, 2, 4, 8, 16, 30, 30]):
        crash = t + 50  # healthy for less than a minute each time: no reset
        pb(crash, Exited(100 + n, 2), "backing-off", Wait(crash + delay))
        assert pb.sv.reason == f"exited with status 2; restarting in {delay} s"
        assert pb.sv.to_json(crash)["next_retry_in_s"] == delay
        pb(crash + delay / 2, Tick(), "backing-off", Wait(crash + delay))  # early: the same timer again
        t = crash + delay
        pb(t, Tick(), "starting", Spawn())
        pb(t, Spawned(101 + n), "starting", check(0.5), Wait(t + 30))
        pb.ok(t + 0.5, "running", check(5))
    assert pb.sv.restarts == 7 and pb.sv.pid == 107


def test_a_healthy_minute_resets_the_backoff() -> None:
    pb = started(pid=1)
    pb(5, Exited(1, 2), "backing-off", Wait(6))
    pb(6, Tick(), "starting", Spawn())
    pb(6, Spawned(2), "starting", check(0.5), Wait(36))
    pb(7, Exited(2, 2), "backing-off", Wait(9))  # 2 s: still climbing
    pb(9, Tick(), "starting", Spawn())
    pb(9, Spawned(3), "starting", check(0.5), Wait(39))
    pb.ok(10, "running", check(5))
    pb(69.5, Exited(3, 2), "backing-off", Wait(73.5))  # 59.5 s healthy is not a minute: 4 s
    pb(73.5, Tick(), "starting", Spawn())
    pb(73.5, Spawned(4), "starting", check(0.5), Wait(103.5))
    pb.ok(74, "running", check(5))
    pb.ok(134, "running", check(5))
    assert pb.sv.backoff_s == 1  # a minute healthy
    pb(150, Exited(4, -11), "backing-off", Wait(151))
    assert "killed by signal 11" in pb.sv.reason


def test_five_crashes_within_two_minutes_fail_for_good() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False), "starting", Spawn())
    t = 0.0
    for pid, delay in zip(range(1, 5), [1, 2, 4, 8], strict=True):
        pb(t, Spawned(pid), "starting", check(0.5), Wait(t + 30))
        pb(t + 0.2, Exited(pid, 2), "backing-off", Wait(t + 0.2 + delay))
        t += 0.2 + delay
        pb(t, Tick(), "starting", Spawn())
    pb(t, Spawned(5), "starting", check(0.5), Wait(t + 30))
    pb(t + 0.2, Exited(5, 2), "failed")
    assert pb.sv.reason.startswith("crashed 5 times within 120 s, not restarting (last: exited with status 2)")
    assert pb.names()[-1] == "ollama_did_fail" and pb.sv.retry_at is None
    pb(t + 1000, Tick(), "failed")
    pb.ok(t + 1000, "failed")
    pb(t + 1001, Exited(5, 2), "failed")


def test_crashes_spread_over_more_than_two_minutes_never_fail() -> None:
    pb = started(pid=0)
    for pid in range(20):  # a crash every 31 s: four in any two minutes, never five
        crash = 31.0 * (pid + 1)
        pb(crash, Exited(pid, 1), "backing-off", Wait(ANY))
        t = pb.sv.retry_at or 0.0
        pb(t, Tick(), "starting", Spawn())
        pb(t, Spawned(pid + 1), "starting", check(0.5), Wait(t + 30))
        pb.ok(t + 0.5, "running", check(5))
    assert len(pb.sv.crash_times) == 4 and pb.sv.restarts == 20 and pb.sv.backoff_s == 30


def test_a_hang_is_terminated_then_killed_then_restarted() -> None:
    pb = started(pid=7)
    pb.fail(5.5, "unhealthy", check(5), Wait(20.5))
    pb.fail(9.5, "unhealthy", check(5))
    pb.fail(13.5, "unhealthy", Terminate(7, 5), Wait(18.5))  # third failed check: hung
    assert pb.sv.reason == "hung: 3 health checks failed (last: timed out)"
    pb.ok(16, "unhealthy")  # the superseded check's answer changes nothing
    pb(17, Tick(), "unhealthy", Wait(18.5))
    pb(18.5, Tick(), "unhealthy", Kill(7))  # still alive after the grace period
    pb(18.75, Exited(7, -9), "backing-off", Wait(19.75))
    assert "hung" in pb.sv.reason and "killed by signal 9" in pb.sv.reason
    pb(19.75, Tick(), "starting", Spawn())
    assert pb.names()[-3:] == ["ollama_did_become_unhealthy", "ollama_did_hang", "ollama_did_exit"]


def test_a_hang_is_also_detected_by_time_and_at_start() -> None:
    pb = started(pid=7)
    pb.fail(5.5, "unhealthy", check(5), Wait(20.5))
    pb(20.5, Tick(), "unhealthy", Terminate(7, 5), Wait(25.5))  # 15 s without an answer
    pb(21, Exited(7, 0), "backing-off", Wait(22))  # it obeyed SIGTERM: still counted as a crash
    assert pb.sv.reason.startswith("hung: no answer to /api/version for 15 s; it exited with status 0")
    pb(22, Tick(), "starting", Spawn())
    pb(22, Spawned(8), "starting", check(0.5), Wait(52))
    pb.fail(22.5, "starting", check(0.5), error="connection refused")
    pb(52, Tick(), "unhealthy", Terminate(8, 5), Wait(57))  # never answered within 30 s


def test_stop_terminates_only_what_ollacache_started() -> None:
    pb = started(pid=42)
    pb(10, StopRequested(), "running", Terminate(42, 5), Wait(15))
    pb(10, RestartRequested(), "running", Refuse("Ollacache is shutting down"))
    pb(15, Tick(), "running", Kill(42))  # it ignored SIGTERM
    pb(15.1, Exited(42, -9), "stopped")
    assert pb.sv.reason == "stopped by Ollacache (was killed by signal 9)" and not pb.sv.owned

    attached = Playbook()
    attached(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    attached(1, StopRequested(), "stopped")  # no Terminate, no Kill
    assert "left running" in attached.sv.reason and attached.names()[-1] == "ollama_did_detach"
    attached.ok(2, "stopped")  # the last check's answer no longer matters

    backing_off = started(pid=1)
    backing_off(5, Exited(1, 2), "backing-off", Wait(6))
    backing_off(5.5, StopRequested(), "stopped")
    backing_off(6, Tick(), "stopped")  # no Spawn after a stop

    early = Playbook()
    early(0, Start("auto", binary_found=True, upstream_answers=False), "starting", Spawn())
    early(0, StopRequested(), "starting")
    early(0.1, Spawned(9), "starting", Terminate(9, 5), Wait(5.1))  # stopped as soon as its pid is known
    early(0.2, Exited(9, 0), "stopped")


def test_never_mode_never_starts_anything() -> None:
    pb = Playbook()
    pb(0, Start("never", binary_found=True, upstream_answers=False, upstream=UP), "stopped", check(5))
    assert pb.sv.reason == f"not managed (ollama.manage is never) and nothing answers at {UP}"
    pb.fail(5, "stopped", check(5), error="connection refused")
    pb.ok(10, "attached", check(5))
    pb(11, RestartRequested(), "attached", Refuse("ollama.manage is never: Ollacache does not start or restart Ollama"))
    pb(12, StopRequested(), "stopped")

    answering = Playbook()
    answering(0, Start("never", binary_found=False, upstream_answers=True), "attached", check(0))


def test_no_binary_and_nothing_answering_is_not_installed_in_plain_words() -> None:
    pb = Playbook()
    pb(
        0,
        Start("auto", binary_found=False, upstream_answers=False, install_hint="Install it."),
        "not_installed",
        check(5),
    )
    assert pb.sv.reason == "Ollama is not installed: no Ollama program was found. Install it."
    assert pb.names() == ["ollama_is_not_installed"]
    pb.fail(5, "not_installed", check(5), error="connection refused")  # still absent: nothing new to say
    pb.ok(10, "attached", check(5))  # someone started one: attach to it
    assert pb.names() == ["ollama_is_not_installed", "ollama_did_attach"]

    default_hint = Playbook()
    default_hint(0, Start("auto", binary_found=False, upstream_answers=False), "not_installed", check(5))
    assert "https://ollama.com/download" in default_hint.sv.reason and "`" not in default_hint.sv.reason

    always = Playbook()  # "always" cannot start what is not there either: the same state, not a failure
    always(
        0,
        Start("always", binary_found=False, upstream_answers=False, install_hint="Install it."),
        "not_installed",
        check(5),
    )


def test_detect_again_starts_an_ollama_installed_since_or_attaches_to_one_started_since() -> None:
    reason = "Ollama is not installed: no Ollama program was found. Install it."
    pb = Playbook()
    pb(
        0,
        Start("auto", binary_found=False, upstream_answers=False, install_hint="Install it."),
        "not_installed",
        check(5),
    )
    pb(1, UserStartRequested(binary_found=False, upstream_answers=False), "not_installed", check(5), Refuse(reason))
    pb(2, UserStartRequested(binary_found=True, upstream_answers=False), "starting", Spawn())

    elsewhere = Playbook()
    elsewhere(0, Start("auto", binary_found=False, upstream_answers=False), "not_installed", check(5))
    elsewhere(1, UserStartRequested(binary_found=False, upstream_answers=True), "attached", check(0))


def test_always_refuses_an_address_taken_by_another_server() -> None:
    pb = Playbook()
    pb(0, Start("always", binary_found=True, upstream_answers=True, upstream=UP), "failed")
    assert pb.sv.reason.startswith(f"address in use: something already answers at {UP}")
    pb(1, RestartRequested(upstream_answers=True), "failed", Refuse(pb.sv.reason))
    pb(2, RestartRequested(upstream_answers=False), "starting", Spawn())  # the address is free now


def test_a_user_restart_restarts_ours_at_once_and_forgets_the_crashes() -> None:
    pb = started(pid=1)
    t = 0.0
    for pid, delay in zip(range(1, 4), [1, 2, 4], strict=True):  # three quick crashes
        pb(t + 1, Exited(pid, 2), "backing-off", Wait(t + 1 + delay))
        t += 1 + delay
        pb(t, Tick(), "starting", Spawn())
        pb(t, Spawned(pid + 1), "starting", check(0.5), Wait(t + 30))
    pb.ok(t + 0.5, "running", check(5))
    pb(t + 1, RestartRequested(), "running", Terminate(4, 5), Wait(t + 6))
    assert pb.sv.crash_times == () and pb.sv.reason == "restarting at the user's request"
    pb(t + 2, Exited(4, 0), "starting", Spawn())  # no backoff
    pb(t + 2, Spawned(5), "starting", check(0.5), Wait(t + 32))
    for pid, delay in zip(range(5, 9), [1, 2, 4, 8], strict=True):  # four more: still short of five
        pb(t + 3, Exited(pid, 2), "backing-off", Wait(t + 3 + delay))
        t += 3 + delay
        pb(t, Tick(), "starting", Spawn())
        pb(t, Spawned(pid + 1), "starting", check(0.5), Wait(t + 30))
    assert pb.sv.restarts == 8
    pb(t + 1, Exited(9, 2), "failed")
    pb(t + 2, RestartRequested(), "starting", Spawn())  # from failed: a fresh try
    assert pb.names().count("ollama_will_restart") == 1


def test_a_user_restart_of_an_attached_ollama_is_refused() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    pb(
        1,
        RestartRequested(),
        "attached",
        Refuse(f"the Ollama at {UP} was not started by Ollacache; restart it yourself"),
    )
    pb.fail(2, "unhealthy", check(5))
    actions = pb(3, RestartRequested(), "unhealthy", ANY)
    assert isinstance(actions[0], Refuse)


def test_spawn_failures_are_crashes_and_stale_events_change_nothing() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False), "starting", Spawn())
    pb(0, SpawnFailed("permission denied"), "backing-off", Wait(1))
    assert pb.sv.reason == "could not start: permission denied; restarting in 1 s"
    pb(0.5, Exited(1234, 0), "backing-off")  # not ours
    pb(0.5, Spawned(1234), "backing-off")  # no Spawn was asked for
    pb(0.5, HealthFailed("refused", 999), "backing-off")
    pb(0.5, Start("auto", binary_found=True, upstream_answers=False), "starting", Spawn())  # a new session
    pb(
        1,
        Start("auto", binary_found=True, upstream_answers=False),
        "starting",
        Refuse("the Ollama started by Ollacache is still running"),
    )


def test_requests_wait_only_for_an_ollama_on_its_way() -> None:
    from dataclasses import replace

    from core.supervision.machine import on_its_way

    waiting = [
        replace(Supervision(), state="starting"),
        replace(Supervision(), state="backing-off"),
        replace(Supervision(), state="running", exit_intent="restart"),
        replace(Supervision(), state="unhealthy", exit_intent="hang"),
    ]
    not_waiting = [
        Supervision(),
        replace(Supervision(), state="running"),
        replace(Supervision(), state="attached"),
        replace(Supervision(), state="failed"),
        replace(Supervision(), state="running", exit_intent="stop"),
    ]
    assert all(on_its_way(sv) for sv in waiting)
    assert not any(on_its_way(sv) for sv in not_waiting)


def test_a_request_that_cannot_reach_ollama_has_it_checked_at_once() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    pb.ok(0.1, "attached", check(5))
    pb(1, UpstreamFailed(), "attached", check(0))  # not in 5 s: now
    pb.fail(1.1, "unhealthy", check(5), error="connection refused")
    assert pb.sv.reason == f"Ollama stopped answering at {UP}; cached answers are still served"
    assert pb.sv.check_error == "connection refused"
    pb(2, UpstreamFailed(), "unhealthy")  # already known: nothing more to do
