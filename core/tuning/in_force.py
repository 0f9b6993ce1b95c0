"""The tuning in force: this machine's hardware and the settings' overrides, combined once."""

from __future__ import annotations

from typing import Any

from core.hardware.detect import Hardware, detect
from core.config.settings import Settings
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


def hardware_json(hw: Hardware, rec: Recommendation) -> dict[str, Any]:
    """The document of ``ollacache hardware --json`` and ``GET /-/hardware``: the detected facts
    (`Hardware.to_json`) plus ``"recommended"`` (`Recommendation.to_json`)."""
    return {**hw.to_json(), "recommended": rec.to_json()}
