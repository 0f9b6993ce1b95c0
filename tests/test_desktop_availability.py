"""Which of Ollama's actions the app offers in each state, and the reason it gives for those it greys: the one
table that the tray menu, the dashboard and the settings window all read (desktop/availability.py)."""

from __future__ import annotations

from typing import Any

import pytest

from desktop.availability import ENGINE_DOWN, ollama_actions

NOT_OURS = "Ollacache did not start this Ollama, so it cannot restart it"
NOT_INSTALLED = "Ollama is not installed on this computer"
NOT_OLLAMA = "The server at Ollama's address is not Ollama: Ollacache forwards requests to it as they are"


def state(name: str, **more: Any) -> dict[str, Any]:
    return {"state": name, "managed": True, "owned": False, "held": False, "binary": "/usr/bin/ollama", **more}


# (what, Ollama's state document, loaded models, {action: reason when greyed, "" when offered})
TABLE: list[tuple[str, dict[str, Any] | None, list[Any] | None, dict[str, str]]] = [
    (
        "the engine is not up yet",
        None,
        None,
        {
            "start": ENGINE_DOWN,
            "stop": ENGINE_DOWN,
            "restart": ENGINE_DOWN,
            "unload": ENGINE_DOWN,
            "detect": ENGINE_DOWN,
        },
    ),
    (
        "not installed: only Detect again",
        state("not_installed", binary=None),
        None,
        {
            "start": NOT_INSTALLED,
            "stop": NOT_INSTALLED,
            "restart": NOT_INSTALLED,
            "detect": "",
            "unload": "Ollama is not running, so no model is in memory",
        },
    ),
    (
        "ours, running, one model loaded",
        state("running", owned=True),
        [{"name": "llama3.2"}],
        {
            "start": "Ollama is already running",
            "stop": "",
            "restart": "",
            "unload": "",
            "detect": "Ollama is already found",
        },
    ),
    ("ours, running, nothing loaded", state("running", owned=True), [], {"unload": "No model is loaded in memory"}),
    (
        "started elsewhere",
        state("attached"),
        [],
        {
            "start": "Ollama is already running",
            "stop": "Ollacache did not start this Ollama, so it cannot stop it",
            "restart": NOT_OURS,
        },
    ),
    (
        "started elsewhere, not answering",
        state("unhealthy"),
        None,
        {"restart": NOT_OURS, "unload": "Ollama is not running, so no model is in memory"},
    ),
    ("ours, not answering: restart it", state("unhealthy", owned=True), None, {"restart": "", "stop": ""}),
    (
        "stopped by the user",
        state("stopped", held=True),
        None,
        {"start": "", "stop": "Ollama is not running", "restart": "Ollama was stopped: start it instead"},
    ),
    ("ours gave up after crashes", state("failed"), None, {"start": "", "restart": ""}),
    (
        "not managed",
        state("stopped", managed=False),
        None,
        {"start": "Ollacache is set not to start or stop Ollama (Settings, Ollama: Manage Ollama)"},
    ),
    (
        "a server that is not Ollama answers at its address",
        state("attached", version=""),
        [],
        dict.fromkeys(("start", "stop", "restart", "unload", "detect", "tune"), NOT_OLLAMA),
    ),
    (
        "an Ollama attached before its first check told its version",
        state("attached", version=None),
        [],
        {"restart": NOT_OURS, "tune": ""},
    ),
]


@pytest.mark.parametrize(("ollama", "models", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_each_action_is_offered_or_greyed_with_its_reason(
    ollama: dict[str, Any] | None, models: list[Any] | None, expected: dict[str, str]
) -> None:
    actions = ollama_actions(ollama, models)
    for name, reason in expected.items():
        assert (actions[name].enabled, actions[name].reason) == (reason == "", reason), name  # type: ignore[index]
