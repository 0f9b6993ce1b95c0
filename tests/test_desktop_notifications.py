"""Notifications: which engine events reach the user, one per event and not a storm."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QSystemTrayIcon  # noqa: E402

from core.supervision.machine import (  # noqa: E402
    Exited,
    HealthOk,
    Report,
    ScheduleCheck,
    Spawn,
    Spawned,
    Start,
    Supervision,
    Tick,
    step,
)
from desktop.notifications import Notification, NotificationPolicy, Notifier  # noqa: E402


def crash(at: float, message: str = "exited with status 1; restarting in 1 s") -> tuple[str, dict[str, Any], float]:
    return "ollama_did_exit", {"message": message, "ollama": {"state": "backing-off"}}, at


def healthy(at: float) -> tuple[str, dict[str, Any], float]:
    return "ollama_did_become_healthy", {"message": "answering (version 0.12.0)", "ollama": {"state": "running"}}, at


def titles(events: list[tuple[str, dict[str, Any], float]], policy: NotificationPolicy | None = None) -> list[str]:
    policy = policy or NotificationPolicy()
    return [note.title for name, payload, at in events for note in policy.event(name, payload, at)]


TUNED = {
    "state": "done",
    "result": {
        "model": "llama3.2:latest",
        "results": [{"num_thread": 2, "tokens_per_s": 9.1}, {"num_thread": 6, "tokens_per_s": 17.6}],
        "best": {"num_thread": 6, "tokens_per_s": 17.6},
    },
}

TABLE: list[tuple[str, list[tuple[str, dict[str, Any], float]], list[str]]] = [
    ("one crash, then back", [crash(0), healthy(2)], ["Ollama crashed", "Ollama is running again"]),
    (
        "a crash loop is one notice, then the give-up",
        [
            crash(0),
            healthy(2),
            crash(10),
            healthy(12),
            crash(20),
            healthy(23),
            crash(30),
            healthy(36),
            crash(45),
            (
                "ollama_did_fail",
                {
                    "message": "crashed 5 times within 120 s, not restarting (last: exited with status 1); "
                    "restart it from the tray or POST /-/ollama/restart",
                    "ollama": {"state": "failed"},
                },
                45,
            ),
        ],
        ["Ollama crashed", "Ollama is running again", "Ollama keeps crashing", "Ollama stopped"],
    ),
    (
        "crashes far apart are each told",
        [crash(0), healthy(2), crash(600), healthy(602)],
        ["Ollama crashed", "Ollama is running again", "Ollama crashed", "Ollama is running again"],
    ),
    (
        "back after the give-up, once the user restarts it",
        [
            ("ollama_did_fail", {"message": "binary not found"}, 0),
            ("ollama_will_restart", {}, 50),
            ("ollama_did_spawn", {}, 50),
            healthy(51),
        ],
        ["Ollama stopped", "Ollama is running again"],
    ),
    (
        "a restart the user asked for is not news",
        [
            healthy(0),
            ("ollama_will_restart", {"message": "restart requested by the user"}, 100),
            ("ollama_did_spawn", {}, 101),
            healthy(102),
        ],
        [],
    ),
    ("an exit that is no crash is not told", [("ollama_did_exit", {"ollama": {"state": "stopped"}}, 0)], []),
    (
        "a hang, then back",
        [("ollama_did_hang", {}, 0), crash(5, "hung: 3 health checks failed; it exited"), healthy(8)],
        ["Ollama crashed", "Ollama is running again"],
    ),
    (
        "Ollama not installed is an expected state, not an error",
        [
            (
                "ollama_is_not_installed",
                {"message": "Ollama is not installed", "ollama": {"state": "not_installed"}},
                0,
            ),
            ("ollama_did_attach", {}, 400),
            ("ollama_did_disappear", {}, 500),
            ("ollama_is_not_installed", {"message": "Ollama is not installed"}, 600),
        ],
        [],
    ),
    (
        "tuning runs: the same kind within a minute collapses",
        [("tune_did_finish", TUNED, 0), ("tune_did_finish", TUNED, 30), ("tune_did_finish", TUNED, 90)],
        ["Tuning finished", "Tuning finished"],
    ),
    (
        "the everyday events are not notifications",
        [
            ("stats", {"requests": 1}, 0),
            ("entry_did_store", {"model": "m"}, 1),
            ("tune_did_progress", {}, 2),
            ("ollama_did_spawn", {}, 3),
            ("ollama_did_attach", {}, 4),
            ("ollama_is_not_managed", {}, 5),
            ("ollama_did_stop", {}, 6),
            ("ollama_did_become_unhealthy", {}, 7),
            ("something_new", {}, 8),
        ],
        [],
    ),
]


@pytest.mark.parametrize(("events", "expected"), [(e, x) for _, e, x in TABLE], ids=[t[0] for t in TABLE])
def test_events_to_notifications(events: list[tuple[str, dict[str, Any], float]], expected: list[str]) -> None:
    assert titles(events) == expected


def test_the_messages_say_what_happened_and_what_to_do() -> None:
    policy = NotificationPolicy()
    [crashed] = policy.event(*crash(0))
    assert crashed == Notification(
        "ollama_crashed", "Ollama crashed", "It exited with status 1; restarting in 1 s.", "warning"
    )
    [loop] = policy.event(*crash(10))
    assert loop.level == "critical" and "crashed 2 times in 120 s" in loop.message and "log" in loop.message
    [failed] = policy.event(
        "ollama_did_fail", {"message": "crashed 5 times within 120 s, not restarting; restart it from the tray"}, 20
    )
    assert failed.message == "It crashed 5 times within 120 s, not restarting; restart it from the tray."
    [back] = policy.event("ollama_did_become_healthy", {"ollama": {"state": "running", "version": "0.12.0"}}, 200)
    assert back.message == "Ollama 0.12.0 answers again."
    [refused] = NotificationPolicy().event(
        "ollama_did_fail", {"message": "address in use: something already answers at http://127.0.0.1:11434"}, 0
    )
    assert refused.message == "Address in use: something already answers at http://127.0.0.1:11434."


def test_a_tuning_run_tells_its_winner_or_why_it_failed() -> None:
    [done] = NotificationPolicy().event("tune_did_finish", TUNED, 0)
    assert done.message == (
        "With llama3.2:latest: Fastest: 6 threads at 17.6 tokens/s, 93 % faster than 2 threads. "
        "Apply it in Settings > Performance."
    )
    [applied] = NotificationPolicy().event("tune_did_finish", {**TUNED, "applied": {"num_thread": 6}}, 0)
    assert applied.message.endswith("6 threads at 17.6 tokens/s, 93 % faster than 2 threads. Now in use.")
    tie = {
        "state": "done",
        "result": {
            "model": "m",
            "results": [{"num_thread": 1, "tokens_per_s": 10.1}, {"num_thread": 2, "tokens_per_s": 10.3}],
            "best": {"num_thread": 1, "tokens_per_s": 10.1},
        },
    }
    [even] = NotificationPolicy().event("tune_did_finish", tie, 0)
    assert "No measurable difference between 1 and 2 threads" in even.message and "Fastest" not in even.message
    [failed] = NotificationPolicy().event(
        "tune_did_finish", {"state": "failed", "error": "measured, but could not apply 6 threads: disk full"}, 0
    )
    assert (failed.title, failed.message) == ("Tuning failed", "Measured, but could not apply 6 threads: disk full.")


def test_the_store_failing_or_full_is_told_once_until_it_works_again() -> None:
    policy = NotificationPolicy()
    ok = {"ok": True, "error": None, "location": "/c"}
    full = {"ok": False, "error": "OperationalError: database or disk is full", "location": "/c"}
    assert policy.store(ok, 0) == []
    [note] = policy.store(full, 1)
    assert note.title == "The cache disk is full" and note.level == "warning"
    assert note.message.startswith("OperationalError: database or disk is full.")
    assert policy.store(full, 2) == [] and policy.store(full, 500) == []
    assert policy.store(ok, 600) == []
    [again] = policy.store({"ok": False, "error": "PermissionError: [Errno 13] Permission denied: '/c/cache.db'"}, 700)
    assert again.title == "The cache is not working"
    [disk] = NotificationPolicy().store({"ok": False, "error": "OSError: [Errno 28] No space left on device"}, 0)
    assert disk.title == "The cache disk is full"


def test_the_stores_events_are_told_as_its_health_is() -> None:
    policy = NotificationPolicy()
    failed = {"store": {"ok": False, "error": "OperationalError: database or disk is full", "location": "/c"}}
    [note] = policy.event("store_did_fail", failed, 0)
    assert note.title == "The cache disk is full"
    assert policy.store(failed["store"], 1) == []  # the health read after connecting: the same news, not again
    assert policy.event("store_did_recover", {"store": {"ok": True, "error": None, "location": "/c"}}, 2) == []
    [again] = policy.event("store_did_fail", {"store": {"ok": False, "error": "OSError: disk I/O error"}}, 100)
    assert again.title == "The cache is not working"


def test_a_store_that_flaps_is_told_once_a_minute_at_most() -> None:
    policy = NotificationPolicy()
    broken = {"ok": False, "error": "OperationalError: disk I/O error"}
    shown = [len(policy.store(broken if i % 2 == 0 else {"ok": True}, i)) for i in range(0, 140, 1)]
    assert sum(shown) == 3  # at 0, 60 and 120 s


@dataclass
class _Supervised:
    """Drives the real supervision state machine and turns its reports into the engine's events."""

    sv: Supervision = field(default_factory=Supervision)
    pid: int = 100
    seq: int | None = None
    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)

    def feed(self, event: Any, now: float) -> None:
        self.sv, actions = step(self.sv, event, now)
        for action in actions:
            if isinstance(action, Report):
                self.events.append((action.name, {"message": action.message, "ollama": {"state": self.sv.state}}, now))
            elif isinstance(action, ScheduleCheck):
                self.seq = action.seq
        for action in actions:
            if isinstance(action, Spawn):
                self.pid += 1
                self.feed(Spawned(self.pid), now)

    def answers(self, now: float) -> None:
        assert self.seq is not None
        self.feed(HealthOk("0.12.0", self.seq), now)


def test_the_supervisors_own_crash_loop_is_one_notice_then_the_give_up() -> None:
    ollama = _Supervised()
    ollama.feed(Start("auto", binary_found=True, upstream_answers=False, upstream="http://127.0.0.1:11434"), 0)
    ollama.answers(1)
    now = 1.0
    while ollama.sv.state != "failed":
        now += 5
        ollama.feed(Exited(ollama.pid, -11), now)
        if ollama.sv.state == "backing-off":
            assert ollama.sv.retry_at is not None
            now = ollama.sv.retry_at
            ollama.feed(Tick(), now)
            ollama.answers(now + 0.5)
    names = [name for name, _, _ in ollama.events]
    assert names.count("ollama_did_exit") == 4 and names[-1] == "ollama_did_fail"  # the storm the engine sends
    assert titles(ollama.events) == [
        "Ollama crashed",
        "Ollama is running again",
        "Ollama keeps crashing",
        "Ollama stopped",
    ]


class RecordingTray(QSystemTrayIcon):
    """A real tray icon that also keeps what it was asked to show."""

    def __init__(self) -> None:
        super().__init__(QIcon())
        self.shown: list[tuple[str, str, QSystemTrayIcon.MessageIcon, int]] = []

    def showMessage(
        self,
        title: str,
        message: str,
        icon: Any = QSystemTrayIcon.MessageIcon.Information,  # noqa: N802
        msecs: int = 10000,
    ) -> None:
        self.shown.append((title, message, icon, msecs))
        super().showMessage(title, message, icon, msecs)


def test_the_notifier_shows_what_the_policy_lets_through_on_the_tray(qtbot: Any) -> None:
    tray = RecordingTray()
    now = [0.0]
    notifier = Notifier(tray, clock=lambda: now[0], duration_ms=8000)
    for name, payload, at in [crash(0), healthy(2), crash(10), crash(20), healthy(22)]:
        now[0] = at
        notifier.event(name, payload)
    notifier.store({"ok": False, "error": "OperationalError: database or disk is full"})
    assert [(title, icon, msecs) for title, _, icon, msecs in tray.shown] == [
        ("Ollama crashed", QSystemTrayIcon.MessageIcon.Warning, 8000),
        ("Ollama is running again", QSystemTrayIcon.MessageIcon.Information, 8000),
        ("Ollama keeps crashing", QSystemTrayIcon.MessageIcon.Critical, 8000),
        ("The cache disk is full", QSystemTrayIcon.MessageIcon.Warning, 8000),
    ]
