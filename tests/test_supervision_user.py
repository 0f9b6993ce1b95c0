"""A user's Stop and Start of the Ollama that Ollacache runs, in the state machine (no processes, no clock).

Played like tests/test_supervision.py; then a Hypothesis run with user stops and starts mixed into any
sequence of events checks that a stopped Ollama stays stopped until the user starts it.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from core.supervision.machine import (
    HELD,
    Event,
    Exited,
    Kill,
    Refuse,
    RestartRequested,
    Spawn,
    Spawned,
    Start,
    StopRequested,
    Supervision,
    Terminate,
    Tick,
    UserStartRequested,
    UserStopRequested,
    Wait,
    on_its_way,
    step,
)
from tests.test_supervision import UP, Playbook, check, started
from tests.test_supervision_properties import GAPS, World


def test_a_user_stop_terminates_ours_and_nothing_starts_it_again() -> None:
    pb = started(pid=42)
    pb(10, UserStopRequested(), "running", Terminate(42, 5), Wait(15))
    assert pb.sv.reason == "stopping at the user's request" and not on_its_way(pb.sv)  # requests do not wait
    pb.ok(10.5, "running")  # a check sent before the stop: ignored
    pb(11, Exited(42, -15), "stopped")
    assert pb.sv.reason == HELD and pb.sv.reason.startswith("stopped by the user")
    assert (pb.sv.owned, pb.sv.pid, pb.sv.last_exit) == (False, None, "was killed by signal 15")
    pb(100, Tick(), "stopped")  # no backoff, no restart, no health check
    pb(
        101,
        RestartRequested(),
        "stopped",
        Refuse(
            "Ollama was stopped by the user and stays stopped: start it instead (from the tray or POST /-/ollama/start)"
        ),
    )
    pb(102, UserStopRequested(), "stopped")  # stopped already: nothing to do, nothing refused
    assert pb.names()[-1] == "ollama_did_stop" and pb.sv.to_json(102)["held"] is True


def test_a_user_start_after_a_stop_starts_ours_afresh() -> None:
    pb = started(pid=42)
    pb(10, Exited(42, 2), "backing-off", Wait(11))  # a crash, counted
    pb(10.5, UserStopRequested(), "stopped")  # the pending restart is cancelled
    assert pb.sv.reason == HELD
    pb(11, Tick(), "stopped")  # the old timer fires: nothing
    pb(20, UserStartRequested(binary_found=True, upstream_answers=False), "starting", Spawn())
    assert (pb.sv.held, pb.sv.crash_times, pb.sv.restarts) == (False, (), 1)  # the cancelled restart never ran
    pb(20, Spawned(43), "starting", check(0.5), Wait(50))
    pb.ok(20.5, "running", check(5))
    pb(21, UserStartRequested(), "running", Refuse("the Ollama started by Ollacache is already running (pid 43)"))


def test_a_start_while_the_stop_is_under_way_restarts_it_once_it_has_exited() -> None:
    pb = started(pid=42)
    pb(10, UserStopRequested(), "running", Terminate(42, 5), Wait(15))
    pb(11, UserStartRequested(), "running")
    assert on_its_way(pb.sv) and not pb.sv.held  # requests wait for it again
    assert pb.names()[-1] == "ollama_will_restart"
    pb(12, Exited(42, 0), "starting", Spawn())
    pb(12, Spawned(43), "starting", check(0.5), Wait(42))
    assert pb.sv.restarts == 1


def test_a_stop_before_the_pid_is_known_then_a_start_keeps_the_new_process() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False, upstream=UP), "starting", Spawn())
    pb(0.1, UserStopRequested(), "starting")
    pb(0.2, UserStartRequested(), "starting")  # nothing was sent to it: the stop is simply cancelled
    pb(0.3, Spawned(7), "starting", check(0.5), Wait(30))
    pb.ok(0.8, "running", check(5))


def test_a_stop_before_the_pid_is_known_stops_it_when_it_arrives() -> None:
    pb = Playbook()
    pb(0, Start("auto", binary_found=True, upstream_answers=False, upstream=UP), "starting", Spawn())
    pb(0.1, UserStopRequested(), "starting")
    pb(0.3, Spawned(7), "starting", Terminate(7, 5), Wait(5.3))
    pb(0.5, Exited(7, 0), "stopped")
    assert pb.sv.reason == HELD


def test_a_stopped_ollama_that_is_still_terminating_is_killed_after_the_grace_period() -> None:
    pb = started(pid=42)
    pb(10, UserStopRequested(), "running", Terminate(42, 5), Wait(15))
    pb(15, Tick(), "running", Kill(42))
    pb(15.1, Exited(42, -9), "stopped")


def test_a_failed_ollama_can_be_stopped_and_started_again() -> None:
    pb = Playbook(
        Supervision(state="failed", reason="crashed 5 times", manage="auto", upstream=UP, crash_times=(1, 2, 3, 4, 5))
    )
    pb(10, UserStopRequested(), "stopped")
    assert pb.sv.reason == HELD
    pb(20, UserStartRequested(binary_found=True, upstream_answers=False), "starting", Spawn())
    assert pb.sv.crash_times == ()


def test_user_start_and_stop_are_refused_where_ollacache_runs_no_ollama() -> None:
    never = Playbook()
    never(0, Start("never", binary_found=True, upstream_answers=False, upstream=UP), "stopped", check(5))
    refusal = Refuse("ollama.manage is never: Ollacache does not start or stop Ollama")
    never(1, UserStartRequested(), "stopped", refusal)
    never(2, UserStopRequested(), "stopped", refusal)

    attached = Playbook()
    attached(0, Start("auto", binary_found=True, upstream_answers=True, upstream=UP), "attached", check(0))
    for event, verb in ((UserStopRequested(), "stop"), (UserStartRequested(upstream_answers=True), "start")):
        attached(
            1,
            event,
            "attached",
            Refuse(f"the Ollama at {UP} was not started by Ollacache (it is attached to it); {verb} it yourself"),
        )

    missing = Playbook()
    missing(
        0,
        Start("auto", binary_found=False, upstream_answers=False, upstream=UP, install_hint="Install it."),
        "not_installed",
        check(5),
    )
    reason = "Ollama is not installed: no Ollama program was found. Install it."
    missing(1, UserStopRequested(), "not_installed", Refuse(f"no Ollama started by Ollacache is running ({reason})"))
    missing(2, UserStartRequested(binary_found=False), "not_installed", check(5), Refuse(reason))

    shutting = started(pid=42)
    shutting(5, StopRequested(), "running", Terminate(42, 5), Wait(10))
    for event in (UserStopRequested(), UserStartRequested()):
        shutting(6, event, "running", Refuse("Ollacache is shutting down"))


def test_a_start_where_someone_else_now_answers_attaches_and_says_so() -> None:
    pb = started(pid=42)
    pb(10, UserStopRequested(), "running", Terminate(42, 5), Wait(15))
    pb(11, Exited(42, 0), "stopped")
    pb(20, UserStartRequested(upstream_answers=True), "attached", check(0))  # found one: no refusal
    assert not pb.sv.held and pb.names()[-1] == "ollama_did_attach"


# --- any sequence ---------------------------------------------------------------------------------------------

USER_KINDS = ["user_stop", "user_start", "other", "other", "other"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_stopped_ollama_stays_stopped_until_the_user_starts_it(data: st.DataObject) -> None:
    sv, world, now = Supervision(), World(), 0.0
    for n in range(data.draw(st.integers(1, 60))):
        now += data.draw(st.sampled_from(GAPS))
        kind = "other" if n == 0 or world.spawn_pending else data.draw(st.sampled_from(USER_KINDS))
        event: Event
        if kind == "user_stop":
            event = UserStopRequested()
        elif kind == "user_start":
            event = UserStartRequested(data.draw(st.booleans()), data.draw(st.booleans()))
        else:
            event = world.draw_event(data, sv, first=n == 0)
        if isinstance(event, Tick) and world.timer is not None and data.draw(st.booleans()):
            now = max(now, world.timer)
        before = sv
        sv, actions = step(sv, event, now)
        world.observe(event)
        for action in actions:
            if isinstance(action, (Terminate, Kill)):
                assert action.pid in world.alive and before.owned and before.state != "attached"
            if isinstance(action, Spawn):  # never two at once; never while held, except by the user's start
                assert not world.alive and sv.state == "starting" and not sv.held
                assert not before.held or isinstance(event, (UserStartRequested, Start))
                world.spawn_pending = True
            if isinstance(action, Wait):
                world.timer = action.until
        if sv.held:  # held: ours is going or gone, and nothing watches the address
            assert sv.state == "stopped" or sv.exit_intent in ("hold", "stop") or (sv.owned and sv.pid is None)
            assert sv.state != "attached" and sv.retry_at is None
        if before.held and sv.held and not sv.owned:
            assert sv.state == "stopped" and sv.reason in (HELD, "stopped") or sv.stopping
        if isinstance(event, UserStopRequested) and not any(isinstance(a, Refuse) for a in actions):
            assert sv.held
        assert sv.pid is None or sv.owned
        assert sum(isinstance(action, Wait) for action in actions) <= 1
        json.dumps(sv.to_json(now))
