"""The tuning in force: this machine's hardware and the settings' overrides, combined once."""

from __future__ import annotations

from typing import Any

from core.config.settings import Settings
from core.config.specs_ollama_server import server_environment
from core.hardware.detect import Hardware, detect
from core.tuning.recommend import SETTINGS, Recommendation, recommend


def detect_and_recommend(settings: Settings) -> tuple[Hardware, Recommendation]:
    """Detect the hardware and recommend for it, with every ``tuning.*`` setting as an override.

    Raises :class:`core.tuning.recommend.TuningError` for an override the machine cannot honour.
    """
    hardware = detect()
    return hardware, recommend(hardware, overrides(settings))


def overrides(settings: Settings) -> dict[str, Any]:
    """The ``tuning.*`` settings the user set (the rest are left to the recommendation)."""
    return {name: settings[name] for name in SETTINGS if settings[name] is not None}


def ollama_env(settings: Settings, tuning: Recommendation) -> dict[str, str]:
    """The environment Ollacache gives the Ollama it runs: the tuning, the server settings (models
    folder, origins, the server variables of :mod:`core.config.specs_ollama_server`), and ``ollama.env`` last,
    which wins over both."""
    server = server_environment(settings.__getitem__)
    if settings["ollama.models_dir"] is not None:
        server["OLLAMA_MODELS"] = str(settings["ollama.models_dir"])
    if settings["ollama.origins"]:
        server["OLLAMA_ORIGINS"] = ",".join(settings["ollama.origins"])
    return {**tuning.env, **server, **settings["ollama.env"]}


def hardware_json(hw: Hardware, rec: Recommendation) -> dict[str, Any]:
    """The document of ``ollacache hardware --json`` and ``GET /-/hardware``: the detected facts
    (`Hardware.to_json`), ``"recommended"`` (`Recommendation.to_json`: the tuning in force, the user's
    ``tuning.*`` settings included, named in its ``from_settings``) and ``"for_this_machine"`` (what the
    hardware alone recommends, as a settings window shows beside the values in force)."""
    return {**hw.to_json(), "recommended": rec.to_json(), "for_this_machine": recommend(hw, {}).to_json()}
