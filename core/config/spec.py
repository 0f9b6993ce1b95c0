"""What a setting's definition is: :class:`Spec`, its name, default, parser, what it accepts, its environment
variable and command-line flag, and what a settings form needs (its ``section``, the window's tab, one of
:data:`SECTIONS`; its ``kind``, the field to show; its ``effect``, what a change needs before it is in force;
its ``level``, and what to enter when a value is refused). The settings themselves are in :mod:`core.config.specs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config.parsing import parse_bool

# The sections of the settings window, in order.
GENERAL, CACHE, OLLAMA, OLLAMA_SERVER, PERFORMANCE = (
    "General",
    "Cache",
    "Ollama",
    "Ollama server (expert)",
    "Performance",
)
SECTIONS: tuple[str, ...] = (GENERAL, CACHE, OLLAMA, OLLAMA_SERVER, PERFORMANCE)
# The kinds of value, as a form shows them: text, a whole number, a byte count, a duration in seconds, one of
# ``choices``, a true/false switch, a file or directory path, a list of texts, a table of names and values.
Kind = Literal["text", "number", "bytes", "duration", "choice", "switch", "path", "list", "table"]
# What a change needs before it is in force.
Effect = Literal["nothing", "engine restart", "Ollama restart"]
APPLIED_AT_ONCE: Effect = "nothing"
ENGINE_RESTART: Effect = "engine restart"
OLLAMA_RESTART: Effect = "Ollama restart"

Level = Literal["common", "advanced"]  # a settings window shows the common ones and the rest on request
_ASK_BY_KIND = {
    "bytes": "Enter a size such as 2 GiB or 500 MB",
    "duration": "Enter a duration such as 90s, 12h or 30d",
    "number": "Enter a whole number",
    "switch": "Choose on or off",
}


@dataclass(frozen=True)
class Spec:
    """One setting: ``name`` in the TOML file, its env variable and CLI flag, parser and default; for people,
    ``label`` (a few words), ``help`` (one sentence), ``level`` and ``ask`` (what to enter, said when a value is
    refused; by default one sentence per kind)."""

    name: str
    default: Any
    parse: Callable[[object], Any]
    accepted: str
    env: str | None = None
    flag: str | None = None
    help: str = ""
    metavar: str | None = None
    section: str = GENERAL
    kind: Kind = "text"
    effect: Effect = ENGINE_RESTART
    choices: tuple[str, ...] = ()
    label: str = ""
    level: Level = "advanced"
    ask: str = ""

    @property
    def is_switch(self) -> bool:
        """A true/false setting: its flag takes no value (``--x`` / ``--no-x``)."""
        return self.parse is parse_bool

    @property
    def folder(self) -> bool:
        """A path that names a folder (one to create and write in), not a file."""
        return self.kind == "path" and "directory" in self.accepted

    @property
    def prompt(self) -> str:
        """What to enter, as a person reads it: "Enter a size such as 2 GiB or 500 MB"."""
        if self.ask:
            return self.ask
        if self.kind == "choice":
            return "Choose one of " + ", ".join(self.choices)
        if self.kind == "path":
            return f"Enter a full path, such as {Path.home() / 'Ollacache'}"
        return _ASK_BY_KIND.get(self.kind, f"Enter {self.accepted}")
