"""Which engine events reach the user as a desktop notification, and how a storm of them becomes one.

:class:`NotificationPolicy` is pure: events from ``/-/events`` (and the store part of ``/-/health``) go
in with the time they arrived, on a clock the caller passes; notifications come out. Its rules:

- Ollama crashed (``ollama_did_exit``, sent for a crash with a restart coming): "Ollama crashed". A
  second crash within :attr:`NotificationPolicy.loop_window_s` is a crash loop: one "Ollama keeps
  crashing", then silence for the loop, until the give-up (``ollama_did_fail``: "Ollama stopped"),
  which is always told.
- Ollama answers again (``ollama_did_become_healthy``) after a crash, hang or give-up: "Ollama is running
  again", except inside a crash loop. A restart the user asked for (``ollama_will_restart``) is not
  news; the recovery after it is told only if something had gone wrong before.
- Ollama not installed (``ollama_is_not_installed``) is no news: an expected state before it is installed, which
  the welcome, the icon and the Ollama card say, with a download link; never an error notification.
- The store failing (``store_did_fail``, or ``store.error`` on ``/-/health`` for a store that failed
  before the app connected): "The cache is not working" or, when the disk is full, "The cache disk is
  full"; once, until the store works again (``store_did_recover``).
- A tuning run ended (``tune_did_finish``): the winner, or why it failed.
- Any kind at most once per :attr:`NotificationPolicy.repeat_s` (60 s).

:class:`Notifier` shows what the policy lets through with ``QSystemTrayIcon.showMessage``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from PySide6.QtWidgets import QSystemTrayIcon

from core.observe.published import OLLAMA_EVENTS
from core.tuning.verdict import summary

Level = Literal["information", "warning", "critical"]

_FULL_DISK_SIGNS = ("disk is full", "no space left", "enospc", "errno 28", "disk full", "quota exceeded")


@dataclass(frozen=True)
class Notification:
    """One message for the user: ``kind`` names the rule that made it (repeats of a kind collapse)."""

    kind: str
    title: str
    message: str
    level: Level = "information"


NOTIFIED_EVENTS = (*OLLAMA_EVENTS, "tune_did_finish", "store_did_fail", "store_did_recover")  # what it may tell


def _message(payload: Mapping[str, Any], fallback: str) -> str:
    text = payload.get("message") if isinstance(payload, Mapping) else None
    return str(text) if text else fallback


def _about_ollama(text: str) -> str:
    """The supervisor's reason as a sentence about Ollama: "was killed by signal 11; ..." gets its subject."""
    text = text.strip()
    return _sentence(("It " + text) if text.startswith(("was ", "exited", "crashed", "hung")) else text)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


@dataclass
class NotificationPolicy:
    """Events in, notifications out; ``now`` is any monotonic clock in seconds, the same for every call."""

    repeat_s: float = 60.0
    loop_window_s: float = 120.0  # the supervisor's crash window: crashes closer than this are a loop
    _crashes: list[float] = field(default_factory=list, init=False)  # within loop_window_s
    _trouble: bool = field(default=False, init=False)  # crashed, hung or given up on since it last answered
    _looping: bool = field(default=False, init=False)  # "keeps crashing" was told for the loop going on
    _store_error: bool = field(default=False, init=False)
    _last_shown: dict[str, float] = field(default_factory=dict, init=False)  # kind -> when

    def event(self, name: str, payload: Mapping[str, Any], now: float) -> list[Notification]:
        """What to show for the engine event ``name`` (as on ``/-/events``) that arrived at ``now``."""
        if name in ("store_did_fail", "store_did_recover"):
            return self.store(payload.get("store") or {}, now)
        notes = self._decide(name, payload, now)
        return [note for note in notes if self._fresh(note, now)]

    def store(self, store: Mapping[str, Any], now: float) -> list[Notification]:
        """What to show for the ``store`` part of a ``/-/health`` answer seen at ``now``."""
        error = store.get("error")
        if not error:
            self._store_error = False
            return []
        if self._store_error:
            return []
        self._store_error = True
        if any(sign in str(error).lower() for sign in _FULL_DISK_SIGNS):
            note = Notification(
                "store_full",
                "The cache disk is full",
                f"{_sentence(str(error))} Requests go straight to Ollama until there is room.",
                "warning",
            )
        else:
            note = Notification(
                "store_failed",
                "The cache is not working",
                f"{_sentence(str(error))} Requests go straight to Ollama meanwhile.",
                "warning",
            )
        return [note] if self._fresh(note, now) else []

    def _fresh(self, note: Notification, now: float) -> bool:
        last = self._last_shown.get(note.kind)
        if last is not None and now - last < self.repeat_s:
            return False
        self._last_shown[note.kind] = now
        return True

    def _decide(self, name: str, payload: Mapping[str, Any], now: float) -> list[Notification]:
        state = (payload.get("ollama") or {}).get("state") if isinstance(payload, Mapping) else None
        if name == "ollama_did_exit" and state in (None, "backing-off"):
            return self._crashed(payload, now)
        if name == "ollama_did_fail":
            self._trouble, self._looping = True, False
            self._crashes.clear()
            return [
                Notification(
                    "ollama_failed",
                    "Ollama stopped",
                    _about_ollama(_message(payload, "Ollacache gave up restarting Ollama")),
                    "critical",
                )
            ]
        if name == "ollama_did_hang":
            self._trouble = True
            return []
        if name == "ollama_did_become_healthy":
            recovered, self._trouble = self._trouble, False
            if not recovered or self._in_loop(now):
                return []
            self._looping = False
            version = (payload.get("ollama") or {}).get("version")
            return [
                Notification(
                    "ollama_recovered",
                    "Ollama is running again",
                    f"Ollama {version} answers again." if version else "Ollama answers again.",
                )
            ]
        if name == "tune_did_finish":
            return [_tuned(payload)]
        return []

    def _in_loop(self, now: float) -> bool:
        self._crashes[:] = [at for at in self._crashes if now - at <= self.loop_window_s]
        return len(self._crashes) >= 2

    def _crashed(self, payload: Mapping[str, Any], now: float) -> list[Notification]:
        self._trouble = True
        self._crashes.append(now)
        if not self._in_loop(now):
            self._looping = False
            return [
                Notification(
                    "ollama_crashed",
                    "Ollama crashed",
                    _about_ollama(_message(payload, "exited; Ollacache restarts it")),
                    "warning",
                )
            ]
        if self._looping:
            return []
        self._looping = True
        count, window = len(self._crashes), round(self.loop_window_s)
        return [
            Notification(
                "ollama_crash_loop",
                "Ollama keeps crashing",
                f"It crashed {count} times in {window} s. Ollacache keeps restarting it for now; "
                "Ollama's log says why (Open logs folder).",
                "critical",
            )
        ]


def _tuned(status: Mapping[str, Any]) -> Notification:
    best = (status.get("result") or {}).get("best") or {}
    if status.get("state") != "done":
        error = status.get("error") or "the measurement did not finish"
        return Notification("tune_finished", "Tuning failed", _sentence(str(error)), "warning")
    model = (status.get("result") or {}).get("model") or "the model"
    rows = [
        (int(row["num_thread"]), float(row["tokens_per_s"]))
        for row in (status.get("result") or {}).get("results") or [best]
        if "num_thread" in row
    ]
    text = f"With {model}: {summary(rows)}"
    text += " Now in use." if status.get("applied") else " Apply it in Settings > Performance."
    return Notification("tune_finished", "Tuning finished", text)


_ICONS = {
    "information": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "critical": QSystemTrayIcon.MessageIcon.Critical,
}


class Notifier:
    """Shows what ``policy`` lets through as tray messages; connect the event feed to :meth:`event`."""

    def __init__(
        self,
        tray: QSystemTrayIcon,
        policy: NotificationPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        duration_ms: int = 10_000,
    ) -> None:
        self.tray, self.policy, self.clock, self.duration_ms = tray, policy or NotificationPolicy(), clock, duration_ms

    def event(self, name: str, payload: Mapping[str, Any]) -> None:
        self._show(self.policy.event(name, payload, self.clock()))

    def store(self, store: Mapping[str, Any]) -> None:
        self._show(self.policy.store(store, self.clock()))

    def _show(self, notes: list[Notification]) -> None:
        for note in notes:
            self.tray.showMessage(note.title, note.message, _ICONS[note.level], self.duration_ms)
