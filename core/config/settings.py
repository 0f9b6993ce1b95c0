"""Every setting in one place: name, default, unit, and where it can be set.

Precedence, lowest first: the defaults (:data:`SPECS`), the TOML file ``config.toml`` in the platform config
directory (``[proxy] port = 11435`` sets ``proxy.port``), ``OLLACACHE_*`` environment variables, and
command-line flags; :class:`Settings` remembers where each value came from (:class:`Source`). An
invalid value from any of them, or a name in the file that is no setting, raises :class:`SettingError`,
whose message names the setting, where it came from and what is accepted (for an unknown name: the known
names of its section); the CLI exits 2 on it.

The definitions (:class:`Spec` in :mod:`core.config.spec`, :data:`SPECS` in :mod:`core.config.specs`) are
importable from here too; what lives here is resolving them: the config directory, reading ``config.toml``,
:func:`load` and :func:`reread`, and the resolved :class:`Settings` with each value's :class:`Source`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import platformdirs

from core.config.spec import (
    APPLIED_AT_ONCE,
    CACHE,
    ENGINE_RESTART,
    GENERAL,
    OLLAMA,
    OLLAMA_RESTART,
    OLLAMA_SERVER,
    PERFORMANCE,
    SECTIONS,
    Effect,
    Kind,
    Spec,
)
from core.config.specs import SPEC_BY_NAME, SPECS, SettingError

__all__ = [
    "APPLIED_AT_ONCE",
    "APP_AUTHOR",
    "APP_NAME",
    "CACHE",
    "CONFIG_FILE",
    "DEFAULT",
    "ENGINE_RESTART",
    "GENERAL",
    "OLLAMA",
    "OLLAMA_RESTART",
    "OLLAMA_SERVER",
    "PERFORMANCE",
    "SECTIONS",
    "SPECS",
    "SPEC_BY_NAME",
    "Effect",
    "Kind",
    "SettingError",
    "Settings",
    "Source",
    "Spec",
    "config_dir",
    "default_cache_dir",
    "load",
    "reread",
]

APP_NAME = "ollacache"
APP_AUTHOR = False  # no author folder: on Windows %LOCALAPPDATA%\ollacache, not ...\ollacache\ollacache
CONFIG_FILE = "config.toml"


def config_dir() -> Path:
    """The directory of ``config.toml`` and the control token (``OLLACACHE_CONFIG_DIR`` overrides)."""
    return Path(os.environ.get("OLLACACHE_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME, APP_AUTHOR))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))


@dataclass(frozen=True)
class Source:
    """Where a value came from: ``kind`` default, file, environment or flag, and ``where`` (the file's
    path, the variable's or the flag's name; ``None`` for a default)."""

    kind: Literal["default", "file", "environment", "flag"]
    where: str | None = None

    @property
    def overrides_file(self) -> bool:
        """Set by the environment or a flag: a value written to the file would not be in force."""
        return self.kind in ("environment", "flag")


DEFAULT = Source("default")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``values`` maps each setting name to its parsed value, ``sources`` to where it
    came from (a setting missing there is a default)."""

    values: Mapping[str, Any]
    config_dir: Path
    sources: Mapping[str, Source] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was read but taken otherwise (a relative path in the file)

    @property
    def file(self) -> Path:
        """The ``config.toml`` these settings read."""
        return self.config_dir / CONFIG_FILE

    def source(self, name: str) -> Source:
        return self.sources.get(name, DEFAULT)

    def changed(self, values: Mapping[str, Any], source: Source) -> Settings:
        """These settings with ``values`` (parsed) in place of theirs, each from ``source``."""
        return replace(
            self, values={**self.values, **values}, sources={**self.sources, **dict.fromkeys(values, source)}
        )

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def cache_dir(self) -> Path:
        return Path(self.values["cache.dir"]) if self.values["cache.dir"] else default_cache_dir()

    @property
    def url(self) -> str:
        """The proxy's own base URL, as clients should use it."""
        host = self.values["proxy.host"]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        scheme = "https" if self.values.get("proxy.tls_cert") else "http"
        return (
            f"{scheme}://[{host}]:{self.values['proxy.port']}"
            if ":" in host
            else f"{scheme}://{host}:{self.values['proxy.port']}"
        )


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and f"{prefix}{key}" not in SPEC_BY_NAME:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return _flatten(tomllib.load(handle))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise SettingError.invalid("config file", str(path), str(path), f"a readable TOML file ({error})") from None


def _parse(spec: Spec, raw: object, source: str) -> Any:
    if raw is None:
        return None
    try:
        return spec.parse(raw)
    except (ValueError, TypeError):
        raise SettingError.invalid(spec.name, raw, source, spec.accepted) from None


def _absolute(spec: Spec, value: Any, origin: Source, config: Path) -> tuple[Any, str | None]:
    """A path setting made absolute, and a note when that took a guess: a relative path in ``config.toml``
    (which no client can write now, but an earlier version could) is taken from the config folder, one from
    the environment or a flag from the folder the engine was started in."""
    if spec.kind != "path" or value is None or Path(value).is_absolute():
        return value, None
    if origin.kind == "file":
        resolved = config / value
        return str(resolved), (
            f"{spec.name} in {config / CONFIG_FILE} is a relative path ({value}); it is taken "
            f"as {resolved}: write the full path there to silence this"
        )
    return str(Path.cwd() / value), None


def _file_values(path: Path) -> dict[str, Any]:
    from_file = _read_file(path)
    for name in from_file:
        if name not in SPEC_BY_NAME:
            raise SettingError.unknown(name, str(path))
    return from_file


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting from defaults, ``config.toml``, the environment and ``flags``.

    ``flags`` maps setting names to CLI values; ``None`` values count as not given.
    Raises :class:`SettingError` for an invalid value or an unknown name in the file.
    """
    env = os.environ if env is None else env
    directory = config_dir()
    path = directory / CONFIG_FILE
    from_file = _file_values(path)
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    notes: list[str] = []
    for spec in SPECS:
        raw, source, origin = spec.default, "default", DEFAULT
        if spec.name in from_file:
            raw, source, origin = from_file[spec.name], str(path), Source("file", str(path))
        if spec.env and env.get(spec.env, "") != "":
            raw, source, origin = env[spec.env], spec.env, Source("environment", spec.env)
        if flags and flags.get(spec.name) is not None:
            raw, source = flags[spec.name], spec.flag or spec.name
            origin = Source("flag", source)
        values[spec.name], note = _absolute(spec, _parse(spec, raw, source), origin, directory)
        sources[spec.name] = origin
        notes += [note] if note else []
    return Settings(values, directory, sources, tuple(notes))


def reread(settings: Settings) -> Settings:
    """``settings`` as ``config.toml`` now says: the values that came from the file or a default are read
    again; those set by the environment or a flag (which win over the file) stay.

    Raises :class:`SettingError` as :func:`load` does.
    """
    path = settings.file
    from_file = _file_values(path)
    values = dict(settings.values)
    sources = dict(settings.sources)
    notes: list[str] = []
    for spec in SPECS:
        if settings.source(spec.name).overrides_file:
            continue
        if spec.name in from_file:
            origin = Source("file", str(path))
            values[spec.name], note = _absolute(
                spec, _parse(spec, from_file[spec.name], str(path)), origin, settings.config_dir
            )
            sources[spec.name] = origin
            notes += [note] if note else []
        else:
            values[spec.name] = _parse(spec, spec.default, "default")
            sources[spec.name] = DEFAULT
    return replace(settings, values=values, sources=sources, notes=tuple(notes))
