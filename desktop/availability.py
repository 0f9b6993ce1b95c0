"""Which of the app's actions on Ollama can work now, and why not: decided here, from the engine's state, for the
tray menu, the dashboard and the settings window alike (each greys the same actions with the same reason as
its tooltip, so none offers a button that can only fail).

Pure: it reads the ``ollama`` document of ``/-/stats`` (as ``/-/health`` has it) and imports nothing of Qt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ActionName = Literal["start", "stop", "restart", "unload", "detect", "tune"]
ENGINE_DOWN = "The engine is not running yet"


@dataclass(frozen=True)
class Availability:
    """Whether an action can work now; ``reason`` says why not (a tooltip), empty when it can."""

    enabled: bool
    reason: str = ""


YES = Availability(True)


def no(reason: str) -> Availability:
    return Availability(False, reason)


def ollama_actions(
    ollama: Mapping[str, Any] | None, models: Sequence[object] | None = None, engine_up: bool = True
) -> dict[ActionName, Availability]:
    """Start, Stop, Restart, Unload, Detect again and Tune now for Ollama's state document ``ollama`` and the
    loaded ``models`` (None: not known yet)."""
    if not engine_up or ollama is None:
        return dict.fromkeys(("start", "stop", "restart", "unload", "detect", "tune"), no(ENGINE_DOWN))  # type: ignore[return-value]
    state = str(ollama.get("state") or "")
    owned, held = bool(ollama.get("owned")), bool(ollama.get("held"))
    ours = (
        owned
        or held
        or state in ("starting", "backing-off", "running")
        or (state == "failed" and bool(ollama.get("binary")))
    )
    actions: dict[ActionName, Availability] = {
        "detect": YES if state in ("not_installed", "stopped") else no("Ollama is already found")
    }
    if not_ollama(ollama):
        why = "The server at Ollama's address is not Ollama: Ollacache forwards requests to it as they are"
        return dict.fromkeys(("start", "stop", "restart", "unload", "detect", "tune"), no(why))  # type: ignore[return-value]
    if state in ("attached", "unhealthy") and not ours:
        actions.update(
            start=no("Ollama is already running"),
            stop=no("Ollacache did not start this Ollama, so it cannot stop it"),
            restart=no("Ollacache did not start this Ollama, so it cannot restart it"),
        )
    elif not ollama.get("managed", True):
        why = "Ollacache is set not to start or stop Ollama (Settings, Ollama: Manage Ollama)"
        actions.update(start=no(why), stop=no(why), restart=no(why))
    elif state == "not_installed":
        why = "Ollama is not installed on this computer"
        actions.update(start=no(why), stop=no(why), restart=no(why))
    elif held or state in ("stopped", "failed"):
        actions.update(
            start=YES,
            stop=no("Ollama is not running"),
            restart=no("Ollama was stopped: start it instead") if held else YES,
        )
    else:  # ours: running, starting, backing off, or not answering
        actions.update(start=no("Ollama is already running"), stop=YES, restart=YES)
    actions["unload"] = _unload(state, models)
    actions["tune"] = (
        YES
        if state in ("running", "attached")
        else no(
            "Tuning measures Ollama's speed: "
            + ("install Ollama first" if state == "not_installed" else "it runs once Ollama does")
        )
    )
    return actions


def _unload(state: str, models: Sequence[object] | None) -> Availability:
    if state not in ("running", "attached"):
        return no("Ollama is not running, so no model is in memory")
    if not models:
        return no("No model is loaded in memory")
    return YES


def not_ollama(ollama: Mapping[str, Any] | None) -> bool:
    """Whether what answers at Ollama's address is a server of another kind (an OpenAI-compatible one), used as it
    is: the engine reports it with an empty version (null while not yet known)."""
    return ollama is not None and ollama.get("state") == "attached" and ollama.get("version") == ""


def ollama_answers(ollama: Mapping[str, Any] | None) -> bool:
    """Whether Ollama is there to be asked (its loaded models, its log of a running process)."""
    return ollama is not None and ollama.get("state") in ("running", "attached") and not not_ollama(ollama)
