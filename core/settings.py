"""Every setting in one place: name, default, unit, and where it can be set.

Precedence, lowest first: the defaults below, the TOML file ``config.toml`` in the platform config
directory (``[proxy] port = 11435`` sets ``proxy.port``), ``OLLACACHE_*`` environment variables, and
command-line flags. An invalid value from any of them raises :class:`SettingError`, whose message
names the setting, where the value came from and what is accepted; the CLI exits 2 on it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "ollacache"


class SettingError(ValueError):
    """A setting has a value outside what it accepts."""

    def __init__(self, name: str, value: object, source: str, accepted: str) -> None:
        super().__init__(f"invalid value {value!r} for setting {name} (from {source}); accepted: {accepted}")
        self.name = name


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_quantity(value: object, units: Mapping[str, int]) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in units:
            raise ValueError(value)
        number, unit = float(match.group(1)), match.group(2).lower()
    result = int(number * units[unit])
    if result < 0:
        raise ValueError(value)
    return result


def parse_bytes(value: object) -> int:
    """A byte count: an int, or a string such as ``"2GiB"``, ``"500MB"``, ``"1048576"``."""
    return _parse_quantity(value, _SIZE_UNITS)


def parse_seconds(value: object) -> int:
    """A duration in whole seconds: an int, or a string such as ``"30d"``, ``"12h"``, ``"90s"``."""
    return _parse_quantity(value, _TIME_UNITS)


def parse_port(value: object) -> int:
    port = int(str(value)) if not isinstance(value, bool) else -1
    if not 0 <= port <= 65535:
        raise ValueError(value)
    return port


def parse_url(value: object) -> str:
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(value)
    parts.port  # noqa: B018 - raises ValueError on a malformed port
    return text


def _choice(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if str(value) not in choices:
            raise ValueError(value)
        return str(value)

    return parse


def _host(value: object) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(value)
    return text


def _path(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(value)
    return str(Path(text).expanduser())


def _origins(value: object) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class Spec:
    """One setting: ``name`` in the TOML file, its env variable and CLI flag, parser and default."""

    name: str
    default: Any
    parse: Callable[[object], Any]
    accepted: str
    env: str | None = None
    flag: str | None = None
    help: str = ""


SPECS: tuple[Spec, ...] = (
    Spec("proxy.host", "127.0.0.1", _host, "a host name or IP address to listen on",
         "OLLACACHE_HOST", "--host", "address the proxy listens on"),
    Spec("proxy.port", 11435, parse_port, "a port number from 0 to 65535 (0 picks a free port)",
         "OLLACACHE_PORT", "--port", "port the proxy listens on"),
    Spec("proxy.upstream", "http://127.0.0.1:11434", parse_url, "an http:// or https:// URL",
         "OLLACACHE_UPSTREAM", "--upstream", "the Ollama server the proxy forwards to"),
    Spec("proxy.cors_origins", (), _origins, "a list of origins, or a comma-separated string",
         "OLLACACHE_ORIGINS", None, "extra origins allowed by CORS, as OLLAMA_ORIGINS"),
    Spec("cache.dir", None, _path, "a directory path",
         "OLLACACHE_CACHE_DIR", "--cache-dir", "where the cache lives (default: the user cache dir)"),
    Spec("cache.size_limit", 2 * 2**30, parse_bytes, "a byte count such as 2147483648, 500MB or 2GiB",
         "OLLACACHE_CACHE_SIZE", "--cache-size", "the most the cache may hold, in bytes (LRU beyond)"),
    Spec("cache.memory_limit", 16 * 2**20, parse_bytes, "a byte count such as 16MiB (0 turns the memory tier off)",
         "OLLACACHE_MEMORY_LIMIT", None, "answers kept in memory in front of the store, in bytes"),
    Spec("cache.ttl", 30 * 86400, parse_seconds, "seconds, or a duration such as 90s, 12h or 30d (0 = never)",
         "OLLACACHE_TTL", "--ttl", "how long an entry lives"),
    Spec("ollama.manage", "auto", _choice("auto", "always", "never"), "one of auto, always, never",
         "OLLACACHE_MANAGE_OLLAMA", "--manage-ollama", "whether Ollacache starts and supervises Ollama"),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}


def config_dir() -> Path:
    """The directory of ``config.toml`` and the control token (``OLLACACHE_CONFIG_DIR`` overrides)."""
    return Path(os.environ.get("OLLACACHE_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``values`` maps each setting name to its parsed value."""

    values: Mapping[str, Any]
    config_dir: Path

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def cache_dir(self) -> Path:
        return Path(self.values["cache.dir"]) if self.values["cache.dir"] else default_cache_dir()

    @property
    def url(self) -> str:
        """The proxy's own base URL, as clients should use it."""
        host = self.values["proxy.host"]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        return f"http://{host}:{self.values['proxy.port']}"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
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
        raise SettingError("config file", str(path), str(path), f"a readable TOML file ({error})") from None


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting from defaults, ``config.toml``, the environment and ``flags``.

    ``flags`` maps setting names to CLI values; ``None`` values count as not given.
    Raises :class:`SettingError` for an invalid value or an unknown name in the file.
    """
    env = os.environ if env is None else env
    directory = config_dir()
    path = directory / "config.toml"
    from_file = _read_file(path)
    for name in from_file:
        if name not in SPEC_BY_NAME:
            raise SettingError(name, from_file[name], str(path), "one of " + ", ".join(SPEC_BY_NAME))
    values: dict[str, Any] = {}
    for spec in SPECS:
        raw, source = spec.default, "default"
        if spec.name in from_file:
            raw, source = from_file[spec.name], str(path)
        if spec.env and env.get(spec.env, "") != "":
            raw, source = env[spec.env], spec.env
        if flags and flags.get(spec.name) is not None:
            raw, source = flags[spec.name], spec.flag or spec.name
        if raw is None:
            values[spec.name] = None
            continue
        try:
            values[spec.name] = spec.parse(raw)
        except (ValueError, TypeError):
            raise SettingError(spec.name, raw, source, spec.accepted) from None
    return Settings(values, directory)
