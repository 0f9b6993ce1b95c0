"""Whatever the sequence of events, supervision keeps its promises (hypothesis drives the machine).

A small model of the world answers the machine as the process side would: a :class:`Spawn` is mostly
followed by :class:`Spawned` with a fresh pid, exits come only from processes that were spawned, health
results answer the last check (or a superseded one), and ticks come at any time or when a Wait is due.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from core.supervision.machine import (
    Event,
    Exited,
    HealthFailed,
    HealthOk,
    Kill,
    Manage,
    RestartRequested,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    StopRequested,
    Supervision,
    Terminate,
    Tick,
    Wait,
    step,
)

KINDS = [
    "start",
    "spawned",
    "spawn_failed",
    "exited",
    "exited",
    "stray_exit",
    "ok",
    "ok",
    "ok",
    "failed",
    "failed",
    "failed",
    "stale",
    "tick",
    "due",
    "due",
    "restart",
    "stop",
]  # repeated: more often
AFTER_SPAWN = ["spawned"] * 5 + ["spawn_failed", "stop", "restart", "tick"]  # what mostly follows a Spawn
MANAGES: list[Manage] = ["auto", "auto", "always", "never"]
GAPS = [0.0, 0.3, 1.0, 5.0, 14.0, 31.0, 61.0]  # seconds between two events


@dataclass
class World:
    """What the process side knows: our live pids, a Spawn not yet answered, the timer of the last Wait."""

    alive: set[int] = field(default_factory=set)
    spawn_pending: bool = False
    timer: float | None = None
    next_pid: int = 100

    def draw_event(self, data: st.DataObject, sv: Supervision, first: bool) -> Event:
        kind = "start" if first else data.draw(st.sampled_from(AFTER_SPAWN if self.spawn_pending else KINDS))
        if kind == "start":
            return Start(
                data.draw(st.sampled_from(MANAGES)),
                data.draw(st.sampled_from([True, True, False])),
                data.draw(st.sampled_from([False, False, True])),
            )
        if kind == "spawned":
            self.next_pid += 1
            return Spawned(self.next_pid if self.spawn_pending else 1)  # 1: a Spawned nobody asked for
        if kind == "exited" and self.alive:
            return Exited(data.draw(st.sampled_from(sorted(self.alive))), data.draw(st.sampled_from([0, 2, -9])))
        if kind in ("ok", "failed", "stale"):
            seq = sv.check_seq if sv.check_seq is not None and kind != "stale" else sv.checks - 1
            return HealthFailed("timed out", seq) if kind == "failed" else HealthOk("0.12.0", seq)
        simple: dict[str, Event] = {
            "spawn_failed": SpawnFailed("no such file"),
            "stray_exit": Exited(424242, 0),
            "stop": StopRequested(),
        }
        if kind == "restart":
            return RestartRequested(data.draw(st.booleans()), data.draw(st.booleans()))
        return simple.get(kind, Tick())

    def observe(self, event: Event) -> None:
        """Update the world for an event that has just been fed to the machine."""
        if isinstance(event, Spawned) and self.spawn_pending:
            self.alive.add(event.pid)
        if isinstance(event, (Spawned, SpawnFailed)):
            self.spawn_pending = False
        if isinstance(event, Exited):
            self.alive.discard(event.pid)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_promises_hold_for_any_sequence_of_events(data: st.DataObject) -> None:
    sv, world, now = Supervision(), World(), 0.0
    for n in range(data.draw(st.integers(1, 50))):
        now += data.draw(st.sampled_from(GAPS))
        event = world.draw_event(data, sv, first=n == 0)
        if isinstance(event, Tick) and world.timer is not None and data.draw(st.booleans()):
            now = max(now, world.timer)  # the Wait's timer fires
        before = sv
        sv, actions = step(sv, event, now)
        world.observe(event)
        for action in actions:
            if isinstance(action, (Terminate, Kill)):  # only a live process of ours: never an attached Ollama
                assert action.pid in world.alive and before.owned and before.state != "attached"
            if isinstance(action, Spawn):  # never two of ours at once, never out of failed by itself
                assert not world.alive and sv.state == "starting"
                assert not before.owned or isinstance(event, Exited)
                assert before.state != "failed" or isinstance(event, (RestartRequested, Start))
                world.spawn_pending = True
            if isinstance(action, Wait):
                world.timer = action.until
        assert sv.state != "failed" or not any(isinstance(action, Spawn) for action in actions)
        assert sv.pid is None or sv.owned
        assert sv.state in ("starting", "running", "unhealthy") or not sv.owned  # attached is never ours
        assert sum(isinstance(action, Wait) for action in actions) <= 1
        json.dumps(sv.to_json(now))
