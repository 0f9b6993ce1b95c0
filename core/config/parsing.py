"""Parsers for setting values: each takes what a file, variable or flag gave and returns the value.

Each raises ``ValueError`` (or ``TypeError``) for a value outside what it accepts; :mod:`core.config.settings`
turns that into a message naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
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
    try:
        result = int(number * units[unit])
    except OverflowError:  # four hundred nines: a float too large to be a number of bytes or seconds
        raise ValueError(value) from None
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


def choice(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if str(value) not in choices:
            raise ValueError(value)
        return str(value)

    return parse


def parse_host(value: object) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(value)
    return text


def parse_path(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(value)
    return str(Path(text).expanduser())


def parse_origins(value: object) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(value: object) -> bool:
    """``true``/``false`` in TOML, or ``1``/``0``, ``yes``/``no``, ``on``/``off`` as text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def parse_whole(minimum: int) -> Callable[[object], int]:
    """A parser of whole numbers of at least ``minimum``: an int, or its digits as text (no underscores,
    no fraction; ``True`` is not a number)."""

    def parse(value: object) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", text) or int(text) < minimum:
            raise ValueError(value)
        return int(text)

    return parse


# Ollama's OLLAMA_KEEP_ALIVE and a request's keep_alive: a Go duration (30m, 1h30m, 2.5h, 500ms) or a
# number of seconds; a negative value keeps a model loaded forever.
_KEEP_ALIVE = re.compile(r"-?\d+|-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+")


def parse_keep_alive(value: object) -> str:
    """A keep-alive as Ollama takes it, as text: ``"30m"``, ``"1h30m"``, ``300`` (seconds), ``-1`` (forever)."""
    text = str(value).strip()
    if isinstance(value, bool) or not _KEEP_ALIVE.fullmatch(text):
        raise ValueError(value)
    return text


# The values OLLAMA_KV_CACHE_TYPE accepts; the first is Ollama's default, the others are quantized (and
# need flash attention).
KV_CACHE_TYPES: tuple[str, ...] = ("f16", "q8_0", "q4_0")
parse_kv_cache_type = choice(*KV_CACHE_TYPES)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env_map(value: object) -> dict[str, str]:
    """Environment overrides: a TOML table, or ``NAME=value,NAME2=value2`` as text."""
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            if part.strip():
                name, sep, text = part.partition("=")
                if not sep:
                    raise ValueError(value)
                items.append((name.strip(), text.strip()))
    for name, _ in items:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(value)
    return dict(items)


def redact(url: str) -> str:
    """A URL as shown to people: any ``user:password@`` part replaced by ``***@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
