"""The tray icon's states and their pictures.

Each :class:`IconState` has an SVG source in ``resources/icons/`` (``serving.svg``, ``engine-down.svg``, ...)
and PNG renders of it at :data:`SIZES` beside it (``serving-16.png`` ... ``serving-256.png``, made by
``python -m desktop.render_icons``). A state differs from the others in colour and in shape: the badge in
the corner (none, a clock, a minus, a warning triangle, pause bars, a cross) and, for a down engine, a
dashed outline, so it reads without colour too.
"""

from __future__ import annotations

import enum
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 22, 32, 48, 64, 128, 256)


class IconState(enum.Enum):
    """What the tray shows; the value is the file name of its pictures."""

    SERVING = "serving"
    OLLAMA_STARTING = "ollama-starting"
    OLLAMA_DOWN = "ollama-down"
    OLLAMA_FAILED = "ollama-failed"
    PAUSED = "paused"
    ENGINE_DOWN = "engine-down"

    @property
    def label(self) -> str:
        """A few words for the tooltip and the status line."""
        return _LABELS[self]

    @property
    def svg(self) -> Path:
        return ICON_DIR / f"{self.value}.svg"

    def png(self, size: int) -> Path:
        return ICON_DIR / f"{self.value}-{size}.png"


_LABELS = {
    IconState.SERVING: "serving",
    IconState.OLLAMA_STARTING: "Ollama starting",
    IconState.OLLAMA_DOWN: "Ollama down",
    IconState.OLLAMA_FAILED: "Ollama failed",
    IconState.PAUSED: "caching paused",
    IconState.ENGINE_DOWN: "engine down",
}

# Ollama's states (as /-/health shows them) and the icon each one means while the engine serves
_OLLAMA_ICONS = {
    "running": IconState.SERVING,
    "attached": IconState.SERVING,
    "starting": IconState.OLLAMA_STARTING,
    "backing-off": IconState.OLLAMA_STARTING,
    "unhealthy": IconState.OLLAMA_DOWN,
    "stopped": IconState.OLLAMA_DOWN,
    "not_installed": IconState.OLLAMA_DOWN,
    "failed": IconState.OLLAMA_FAILED,
}


def state_of(connected: bool, stats: dict[str, object] | None) -> IconState:
    """The icon for an engine that answers (``connected``) with the ``/-/stats`` document ``stats``."""
    if not connected or stats is None:
        return IconState.ENGINE_DOWN
    if stats.get("paused"):
        return IconState.PAUSED
    ollama = stats.get("ollama")
    state = ollama.get("state") if isinstance(ollama, dict) else None
    return _OLLAMA_ICONS.get(str(state), IconState.OLLAMA_DOWN)


@cache
def icon(state: IconState) -> QIcon:
    """The state's icon: every PNG render that exists, else the SVG itself."""
    result = QIcon()
    for size in SIZES:
        if state.png(size).exists():
            result.addFile(str(state.png(size)))
    if result.isNull():
        result.addFile(str(state.svg))
    return result
