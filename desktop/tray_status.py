"""What the tray says about the engine, from ``/-/stats``: the icon's tooltip and the menu's status line.

The tooltip says today's hit rate and requests, the time saved today and in all, and Ollama's state; the
status line the address served and the hit rate, with a tuning run's progress while one runs. Both say when the
cache store fails (requests then pass straight to Ollama), which the icon, drawn for Ollama's states, does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.units import plural
from desktop.dashboard.format import ollama_state
from desktop.icons import IconState


def _percent(rate: object) -> str:
    return f"{float(rate) * 100:.0f} %" if isinstance(rate, (int, float)) else "–"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:,.1f} h"


def tune_progress(tune: object) -> str | None:
    """What a running measurement has done so far (``/-/stats``'s ``tune``), or None when none runs."""
    if not isinstance(tune, dict) or tune.get("state") != "running":
        return None
    progress = tune.get("progress")
    if not isinstance(progress, dict):
        return "Tuning: starting…"
    step, steps, threads = progress.get("step"), progress.get("steps"), progress.get("num_thread")
    return f"Tuning: step {step} of {steps} ({plural(threads, 'thread') if isinstance(threads, int) else threads})"


STORE_FAILING = "Cache store failing: requests go straight to Ollama"


def tooltip(stats: Mapping[str, Any] | None, state: IconState, engine_state: str) -> str:
    """The icon's tooltip: ``stats`` (None while the engine does not answer), the ``state`` the icon shows,
    and the engine process's state (``EngineState`` value)."""
    if stats is None:
        return f"Ollacache: engine {'down' if engine_state != 'starting' else 'starting'}"
    totals = stats.get("totals", {})
    today = stats.get("today") or totals  # an older engine counts no days
    ollama = stats.get("ollama") or {}
    # Ollama not installed yet is an expected state, not an alarm: the cache serves, and the last line says why
    label = "serving" if ollama.get("state") == "not_installed" else state.label
    return "\n".join(
        [
            f"Ollacache: {label}",
            *([STORE_FAILING] if stats.get("store_error") else []),  # second: a tooltip may be cut short
            f"Hit rate {_percent(today.get('hit_rate'))} · {plural(today.get('requests', 0), 'request')} today"
            + (f", {today['shared']:,} shared" if today.get("shared") else ""),
            f"Time saved {_duration(today.get('time_saved_s'))} today, {_duration(totals.get('time_saved_s'))} in all",
            f"Ollama: {ollama_state(ollama)[1].lower()}",
        ]
    )


def status_line(stats: Mapping[str, Any] | None, url: str | None, state: IconState) -> str:
    """The menu's first line: where the engine serves and its hit rate, and a tuning run's progress."""
    if stats is None or url is None:
        return f"Ollacache: {state.label}"
    address = url.removeprefix("http://")
    totals = stats.get("totals") or {}
    rate = f"hit rate {_percent(totals.get('hit_rate'))}" if totals.get("requests") else "no requests yet"
    line = f"Serving on {address} · {rate}" + (" · cache store failing" if stats.get("store_error") else "")
    tuning = tune_progress(stats.get("tune"))
    return f"{line} · {tuning}" if tuning else line
