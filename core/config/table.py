"""The settings table: every setting as a settings form shows it, and checking a form's changes.

:func:`rows` describes each :class:`~core.config.settings.Spec` (section, kind, choices, default, what is
accepted, help, what a change needs) with its current value in JSON form, where that value comes from, and
whether it can be changed in the file (not when the environment or a flag sets it: those win over the file).
:func:`check` validates changes with the same parsers as the file, and refuses them all if any is wrong.

Values in JSON: byte counts and durations as numbers (bytes, seconds) with a ``human`` form beside them
("2 GiB", "30d"), paths as text, lists as lists, tables as objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config.parsing import redact
from core.config.settings import Settings, Source
from core.config.spec import Spec
from core.config.specs import SPEC_BY_NAME, SPECS, SettingError
from core.units import listing

# URLs that may carry a password (redis://user:secret@host): the table shows them without it, to anyone who may
# read it, and a value sent back as shown keeps the password it had
WITH_CREDENTIALS = frozenset({"proxy.upstream", "cache.store"})
_BINARY_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def human_bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit it fills: ``2 GiB``, ``1.5 MiB``, ``512 B``."""
    for unit, size in _BINARY_UNITS:
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} B"


def human_seconds(seconds: float) -> str:
    """A duration in the largest unit it fills exactly: ``30d``, ``12h``, ``90s`` (``0`` stays ``0``)."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s" if seconds else "0"
    for unit, size in _DURATION_UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def json_value(spec: Spec, value: Any) -> Any:
    """``value`` of ``spec`` as JSON takes it (tuples as lists, mappings as objects, paths as text)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if spec.kind == "path":
        return str(value)
    if spec.name in WITH_CREDENTIALS and isinstance(value, str):
        return redact(value)
    return value


def _human(spec: Spec, value: Any) -> str | None:
    if value is None:
        return None
    if spec.kind == "bytes":
        return human_bytes(int(value))
    if spec.kind == "duration":
        return human_seconds(float(value))
    return None


def origin_words(source: Source) -> str:
    """Where a value comes from, as a person reads it: "default", "set by OLLACACHE_PORT"."""
    if source.kind == "file":
        return "set in config.toml"
    if source.kind in ("environment", "flag"):
        return f"set by {source.where}"
    return "default"


def shown_text(spec: Spec, value: Any) -> str | None:
    """A value as a person reads it: sizes and durations in their human form, lists joined by commas."""
    if value is None:
        return None
    if (human := _human(spec, value)) is not None:
        return human
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{name}={item}" for name, item in value.items()) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(json_value(spec, value))


def row(spec: Spec, settings: Settings, in_force: Settings | None = None) -> dict[str, Any]:
    """One setting as the table shows it; ``in_force`` (what the engine runs with, when that may differ
    from ``settings``) gives ``pending``: a change made that is not in force yet."""
    value = settings[spec.name]
    source = settings.source(spec.name)
    return {
        "name": spec.name,
        "label": spec.label,
        "level": spec.level,
        "prompt": spec.prompt,
        "folder": spec.folder,
        "section": spec.section,
        "kind": spec.kind,
        "choices": list(spec.choices),
        "default": json_value(spec, spec.default),
        "default_human": _human(spec, spec.default),
        "accepted": spec.accepted,
        "help": spec.help,
        "value": json_value(spec, value),
        "human": _human(spec, value),
        "source": source.kind,
        "set_by": source.where,
        "editable": not source.overrides_file,
        "effect": spec.effect,
        "env": spec.env,
        "flag": spec.flag,
        "pending": in_force is not None and in_force[spec.name] != value,
        # the value in force as a person reads it, and where it comes from; None where only the engine knows
        # it (a folder or program found, a tuned value), which it fills in
        "shown": {"text": shown_text(spec, value), "origin": origin_words(source)},
    }


def rows(settings: Settings, in_force: Settings | None = None) -> list[dict[str, Any]]:
    """Every setting, in the order of :data:`~core.config.settings.SPECS`."""
    return [row(spec, settings, in_force) for spec in SPECS]


class Refused(Exception):
    """Changes refused as a whole: ``status`` 400 (an unknown name or a bad value) or 409 (a setting the
    environment or a flag sets, or a file that cannot be read or written); ``errors`` maps each field at
    fault to its message."""

    def __init__(self, status: int, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = dict(errors or {})

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self), "errors": self.errors}


@dataclass(frozen=True)
class Checked:
    """Changes that passed :func:`check`: ``raw`` as given (what the file gets; ``None`` removes the
    setting from the file), ``parsed`` as the settings hold them."""

    raw: Mapping[str, Any]
    parsed: Mapping[str, Any]


def _locked(name: str, source: Source) -> str:
    what = f"the environment variable {source.where}" if source.kind == "environment" else f"the flag {source.where}"
    return f"{name} is set by {what}, which wins over the file: change it there"


def _fits(spec: Spec, value: Any) -> bool:
    """A JSON value of a shape the setting can hold: lists only for lists, objects only for tables."""
    if isinstance(value, list):
        return spec.kind == "list"
    if isinstance(value, dict):
        return spec.kind == "table"
    return True


def _unusable_folder(path: Path) -> str | None:
    """Why ``path`` cannot be a folder Ollacache creates and writes in, or None: it, or the nearest folder above
    it that exists, must be a folder this user may write in (nothing is created to find out)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"{path} cannot be created"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"you may not write in {probe}"
    return None


def _path_problem(spec: Spec, value: str) -> str | None:
    """A path setting's value must be absolute (a relative one would depend on where the engine was started);
    a folder must be one that can be created and written."""
    path = Path(value)
    if not path.is_absolute():
        return f"{value!r} is not a full path: {spec.prompt[0].lower()}{spec.prompt[1:]}"
    if spec.folder and (why := _unusable_folder(path)) is not None:
        return f"This folder cannot be used: {why}"
    return None


def refusal_message(labels: list[str]) -> str:
    """One line for a refusal of the settings of these ``labels``."""
    return f"Nothing was saved: {listing(labels)} {'needs another value' if len(labels) == 1 else 'need other values'}"


def check(changes: Mapping[str, Any], settings: Settings) -> Checked:
    """Parse every change as the file would be (``None`` means back to the default); a path must be absolute,
    and a folder one that can be created and written.

    Raises :class:`Refused`: 400 with every unknown name and bad value (each said as what to enter), else 409
    listing every setting the environment or a flag sets. Nothing is changed by a refusal.
    """
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    given = dict(changes)
    for name, value in changes.items():
        spec = SPEC_BY_NAME.get(name)
        if spec is None:
            errors[name] = str(SettingError.unknown(name, "the settings"))
            continue
        if (
            name in WITH_CREDENTIALS
            and isinstance(value, str)
            and "***@" in value
            and value == redact(current := str(settings[name]))
        ):
            given[name] = current  # sent back as the table showed it: the password stays
            value = current
        raw = spec.default if value is None else value
        try:
            if not _fits(spec, value):
                raise TypeError(value)
            parsed[name] = None if raw is None else spec.parse(raw)
        except (ValueError, TypeError):
            errors[name] = spec.prompt
            continue
        if spec.kind == "path" and parsed[name] is not None and (problem := _path_problem(spec, parsed[name])):
            errors[name] = problem
    if errors:
        labels = [SPEC_BY_NAME[name].label if name in SPEC_BY_NAME else name for name in errors]
        raise Refused(400, refusal_message(labels), errors)
    locked = {name: _locked(name, settings.source(name)) for name in changes if settings.source(name).overrides_file}
    if locked:
        raise Refused(409, "nothing was changed: " + "; ".join(locked.values()), locked)
    return Checked(given, parsed)
