"""Numbers and states as the dashboard writes them: units, thousands separators, and a state told by a word
and a shape (so it reads without colour). Pure functions, no Qt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.units import count, human_bytes, human_seconds, plural

__all__ = [
    "OLLAMA_STATES",
    "count",
    "milliseconds",
    "ollama_state",
    "per_minute",
    "percent",
    "plural",
    "rows",
    "seconds",
    "size",
]  # count and plural are core.units' (the tray's words too)

# Ollama's states as /-/health names them: (shape, words, tone); tone is "good", "busy", "bad" or "idle"
OLLAMA_STATES: dict[str, tuple[str, str, str]] = {
    "running": ("●", "Running", "good"),
    "attached": ("●", "Running", "good"),  # started elsewhere: the reason says so
    "starting": ("◐", "Starting", "busy"),
    "unhealthy": ("▲", "Not answering", "bad"),
    "backing-off": ("◐", "Restarting soon", "busy"),
    "stopped": ("○", "Stopped", "idle"),
    "not_installed": ("○", "Not installed", "idle"),  # expected before Ollama is installed: no alarm
    "failed": ("✕", "Failed", "bad"),
}


def percent(rate: float | None, digits: int = 1) -> str:
    """A 0..1 rate as a percentage ("62.5 %")."""
    return "–" if rate is None else f"{rate * 100:,.{digits}f} %"


def per_minute(per_second: float | None) -> str:
    return "–" if per_second is None else f"{per_second * 60:,.1f} /min"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def seconds(value: float | None) -> str:
    return "–" if value is None else human_seconds(value)


def size(value: float | None) -> str:
    return human_bytes(value) if value is not None else "–"


def ollama_state(state: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """(shape, words, tone) for Ollama's state document; unknown states are shown by their own name."""
    if not state:
        return "?", "Unknown", "idle"
    name = str(state.get("state") or "unknown")
    return OLLAMA_STATES.get(name, ("◆", name.replace("-", " ").replace("_", " ").capitalize(), "idle"))


def rows(snapshot: Mapping[str, Any], *keys: str) -> dict[str, Mapping[str, Any]]:
    """The first of ``keys`` the snapshot has, as name -> counters (e.g. "by_model" or "models")."""
    for key in keys:
        value = snapshot.get(key)
        if isinstance(value, Mapping):
            return {str(name): row for name, row in value.items() if isinstance(row, Mapping)}
    return {}
