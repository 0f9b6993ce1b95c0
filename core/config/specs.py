"""The definition of every setting: its name, default, parser, what it accepts, its environment variable
and command-line flag, and what a settings form needs (its ``section``, the window's tab; its ``kind``, the
field to show; its ``effect``, what a change needs before it is in force). :mod:`core.config.table` turns
them into the control API's settings table, :mod:`core.config.settings` resolves them from their sources.

:class:`SettingError` is the one error for a setting that cannot apply: its message names the setting,
where the value came from and what is accepted (for an unknown name: the known names of its section).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from core.config.parsing import (
    KV_CACHE_TYPES,
    choice,
    parse_bool,
    parse_bytes,
    parse_env_map,
    parse_host,
    parse_keep_alive,
    parse_kv_cache_type,
    parse_origins,
    parse_path,
    parse_port,
    parse_seconds,
    parse_url,
    parse_whole,
)

BUCKET_MAX = 32  # the most distinct answers cache.bucket keeps per request


def parse_store(value: object) -> str:
    """A ``cache.store`` value: ``disk``, or the URL of a Redis database (``redis://``, ``rediss://``, ``unix://``)."""
    text = str(value).strip()
    if text == "disk":
        return text
    parts = urlsplit(text)
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(value)  # the database is a number
        return text
    if parts.scheme == "unix" and parts.path:
        return text
    raise ValueError(value)


def parse_bucket(value: object) -> int:
    """A ``cache.bucket`` value: a whole number from 1 to :data:`BUCKET_MAX`."""
    count = parse_whole(1)(value)
    if count > BUCKET_MAX:
        raise ValueError(value)
    return count


# The sections of the settings window, in order.
GENERAL, CACHE, OLLAMA, OLLAMA_SERVER, PERFORMANCE = (
    "General", "Cache", "Ollama", "Ollama server (expert)", "Performance")
SECTIONS: tuple[str, ...] = (GENERAL, CACHE, OLLAMA, OLLAMA_SERVER, PERFORMANCE)
# The kinds of value, as a form shows them: text, a whole number, a byte count, a duration in seconds, one of
# ``choices``, a true/false switch, a file or directory path, a list of texts, a table of names and values.
Kind = Literal["text", "number", "bytes", "duration", "choice", "switch", "path", "list", "table"]
# What a change needs before it is in force.
Effect = Literal["nothing", "engine restart", "Ollama restart"]
APPLIED_AT_ONCE: Effect = "nothing"
ENGINE_RESTART: Effect = "engine restart"
OLLAMA_RESTART: Effect = "Ollama restart"


class SettingError(ValueError):
    """A setting that cannot apply: a value outside what it accepts, or a name that is no setting.

    ``name`` is the setting's full name (``cache.ttl``); the message says where it came from and what
    would be accepted.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    @classmethod
    def invalid(cls, name: str, value: object, source: str, accepted: str) -> SettingError:
        return cls(name, f"invalid value {value!r} for setting {name} (from {source}); accepted: {accepted}")

    @classmethod
    def unknown(cls, name: str, source: str) -> SettingError:
        """A name in the file that is no setting: the known keys of its section, or the known sections."""
        section, dot, _ = name.partition(".")
        known: dict[str, list[str]] = {}
        for spec in SPECS:
            head, _, key = spec.name.partition(".")
            known.setdefault(head, []).append(key)
        sections = ", ".join(f"[{known_section}]" for known_section in known)
        if not dot:
            return cls(name, f"unknown setting {name} (settings go in a section: {sections}) in {source}")
        if section not in known:
            return cls(name, f"unknown section [{section}] of setting {name} (known sections: {sections})"
                             f" in {source}")
        return cls(name, f"unknown setting {name} (known in [{section}]: {', '.join(known[section])})"
                         f" in {source}")


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
    metavar: str | None = None
    section: str = GENERAL
    kind: Kind = "text"
    effect: Effect = ENGINE_RESTART
    choices: tuple[str, ...] = ()

    @property
    def is_switch(self) -> bool:
        """A true/false setting: its flag takes no value (``--x`` / ``--no-x``)."""
        return self.parse is parse_bool


SPECS: tuple[Spec, ...] = (
    Spec("proxy.host", "127.0.0.1", parse_host, "a host name or IP address to listen on",
         "OLLACACHE_HOST", "--host", "address the proxy listens on",
         section=GENERAL, kind="text", effect=ENGINE_RESTART),
    Spec("proxy.port", 11435, parse_port, "a port number from 0 to 65535 (0 picks a free port)",
         "OLLACACHE_PORT", "--port", "port the proxy listens on",
         section=GENERAL, kind="number", effect=ENGINE_RESTART),
    Spec("proxy.upstream", "http://127.0.0.1:11434", parse_url, "an http:// or https:// URL",
         "OLLACACHE_UPSTREAM", "--upstream", "the Ollama server the proxy forwards to",
         section=OLLAMA, kind="text", effect=ENGINE_RESTART),
    Spec("proxy.cors_origins", (), parse_origins, "a list of origins, or a comma-separated string",
         "OLLACACHE_ORIGINS", None, "extra origins allowed by CORS, as OLLAMA_ORIGINS",
         section=GENERAL, kind="list", effect=ENGINE_RESTART),
    Spec("cache.dir", None, parse_path, "a directory path",
         "OLLACACHE_CACHE_DIR", "--cache-dir", "where the cache lives (default: the user cache dir)",
         section=CACHE, kind="path", effect=ENGINE_RESTART),
    Spec("cache.size_limit", 2 * 2**30, parse_bytes, "a byte count such as 2147483648, 500MB or 2GiB",
         "OLLACACHE_CACHE_SIZE", "--cache-size", "the most the cache may hold, in bytes (LRU beyond)",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("cache.memory_limit", 4 * 2**20, parse_bytes, "a byte count such as 4MiB (0 turns the memory tier off)",
         "OLLACACHE_MEMORY_LIMIT", None, "memory for hot answers kept in front of the store (each entry with "
         "its overhead, ~1.8 KB for a 1 KB answer), in bytes",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("cache.ttl", 30 * 86400, parse_seconds, "seconds, or a duration such as 90s, 12h or 30d (0 = never)",
         "OLLACACHE_TTL", "--ttl", "how long an entry lives",
         section=CACHE, kind="duration", effect=ENGINE_RESTART),
    Spec("cache.sampling", "all", choice("all", "deterministic", "off"), "one of all, deterministic, off",
         "OLLACACHE_SAMPLING", None, "which generations are cached: all; deterministic (temperature 0 or a "
         "fixed seed); off (none: only embeddings)",
         section=CACHE, kind="choice", effect=APPLIED_AT_ONCE, choices=("all", "deterministic", "off")),
    Spec("cache.bucket", 1, parse_bucket, f"a whole number from 1 to {BUCKET_MAX}",
         "OLLACACHE_BUCKET", None, "distinct answers kept per sampled request, served at random once all "
         "are stored (1 = one answer)",
         section=CACHE, kind="number", effect=APPLIED_AT_ONCE),
    Spec("cache.store", "disk", parse_store, "disk, or a Redis URL such as redis://host:6379/0",
         "OLLACACHE_STORE", "--store", "where entries are kept: disk (embedded), or a Redis database shared "
         "by several proxies (size it with Redis's maxmemory)", "disk|URL",
         section=CACHE, kind="text", effect=ENGINE_RESTART),
    Spec("proxy.offline", False, parse_bool, "true or false (also 1/0, on/off, yes/no)",
         "OLLACACHE_OFFLINE", "--offline", "offline replay: serve hits and refuse every miss (504), never "
         "calling, starting or supervising Ollama",
         section=CACHE, kind="switch", effect=ENGINE_RESTART),
    Spec("cache.memo_limit", 2**20, parse_bytes, "a byte count such as 1MiB (0 keys every body afresh)",
         "OLLACACHE_MEMO_LIMIT", None, "memory for request bodies remembered with their keys, so that a "
         "repeated body is not parsed again, in bytes",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("cache.hits_limit", 2**20, parse_bytes, "a byte count such as 1MiB",
         "OLLACACHE_HITS_LIMIT", None, "memory for the hit counts gathered between writes to the store, in "
         "bytes; beyond it they are written at once",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("cache.sqlite_cache", 2 * 2**20, parse_bytes, "a byte count such as 2MiB",
         "OLLACACHE_SQLITE_CACHE", None, "SQLite's page cache for the whole engine, in bytes",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("cache.sqlite_mmap", 0, parse_bytes, "a byte count such as 64MiB (0 maps nothing)",
         "OLLACACHE_SQLITE_MMAP", None, "bytes of the cache database SQLite maps into memory per connection "
         "(mapped pages count in the engine's memory)",
         section=CACHE, kind="bytes", effect=ENGINE_RESTART),
    Spec("ollama.manage", "auto", choice("auto", "always", "never"), "one of auto, always, never",
         "OLLACACHE_MANAGE_OLLAMA", "--manage-ollama", "whether Ollacache starts and supervises Ollama",
         "auto|always|never",
         section=OLLAMA, kind="choice", effect=ENGINE_RESTART, choices=("auto", "always", "never")),
    Spec("ollama.binary", None, parse_path, "the path of the ollama executable",
         "OLLACACHE_OLLAMA_BINARY", "--ollama-binary", "the ollama executable (default: PATH, then the usual places)",
         "PATH",
         section=OLLAMA, kind="path", effect=ENGINE_RESTART),
    Spec("ollama.port_takeover", True, parse_bool, "true or false (also 1/0, on/off, yes/no)",
         "OLLACACHE_PORT_TAKEOVER", "--port-takeover",
         "when Ollacache starts Ollama and 11434 is free: Ollama on 11444, the proxy on 11434",
         section=GENERAL, kind="switch", effect=ENGINE_RESTART),
    Spec("ollama.start_wait", 30.0, parse_seconds, "seconds, or a duration such as 30s or 2m (0 = do not wait)",
         "OLLACACHE_START_WAIT", None, "how long a request waits for a supervised Ollama that is starting",
         section=OLLAMA, kind="duration", effect=ENGINE_RESTART),
    Spec("ollama.env", {}, parse_env_map, "a table of NAME = value, or NAME=value,NAME2=value2",
         "OLLACACHE_OLLAMA_ENV", None, "extra environment for a supervised Ollama (wins over the tuning)",
         section=OLLAMA_SERVER, kind="table", effect=OLLAMA_RESTART),
    Spec("ollama.models_dir", None, parse_path, "a directory path",
         "OLLACACHE_OLLAMA_MODELS", None, "where a supervised Ollama keeps its models (OLLAMA_MODELS; "
         "default: Ollama's own)", section=OLLAMA_SERVER, kind="path", effect=OLLAMA_RESTART),
    Spec("ollama.origins", (), parse_origins, "a list of origins, or a comma-separated string",
         "OLLACACHE_OLLAMA_ORIGINS", None, "extra origins a supervised Ollama allows (OLLAMA_ORIGINS; "
         "requests through the proxy use proxy.cors_origins)", section=OLLAMA_SERVER, kind="list",
         effect=OLLAMA_RESTART),
    Spec("log.dir", None, parse_path, "a directory path",
         "OLLACACHE_LOG_DIR", "--log-dir", "where Ollama's log goes (default: the user log dir)",
         section=OLLAMA, kind="path", effect=ENGINE_RESTART),
    Spec("tuning.num_thread", None, parse_whole(1), "a whole number of threads, at least 1",
         "OLLACACHE_NUM_THREAD", "--num-thread", "threads per model (default: the physical performance cores)", "N",
         section=PERFORMANCE, kind="number", effect=OLLAMA_RESTART),
    Spec("tuning.num_ctx", None, parse_whole(1), "a context length in tokens, at least 1",
         "OLLACACHE_NUM_CTX", None, "context length (default: by memory)",
         section=OLLAMA_SERVER, kind="number", effect=OLLAMA_RESTART),
    Spec("tuning.keep_alive", None, parse_keep_alive,
         "a duration as Ollama takes it, such as 30m, 1h, 300 (seconds) or -1 (forever)",
         "OLLACACHE_KEEP_ALIVE", None, "how long Ollama keeps a model loaded",
         section=OLLAMA_SERVER, kind="text", effect=OLLAMA_RESTART),
    Spec("tuning.num_parallel", None, parse_whole(1), "a whole number, at least 1",
         "OLLACACHE_NUM_PARALLEL", None, "requests a loaded model answers at once",
         section=OLLAMA_SERVER, kind="number", effect=OLLAMA_RESTART),
    Spec("tuning.max_loaded_models", None, parse_whole(0),
         "a whole number, at least 0 (0 lets Ollama decide: 3 per GPU, or 3 on CPU)",
         "OLLACACHE_MAX_LOADED_MODELS", None, "models kept loaded side by side",
         section=OLLAMA_SERVER, kind="number", effect=OLLAMA_RESTART),
    Spec("tuning.flash_attention", None, parse_bool, "true or false (also 1/0, on/off, yes/no)",
         "OLLACACHE_FLASH_ATTENTION", None, "flash attention (default: on with a GPU)",
         section=OLLAMA_SERVER, kind="switch", effect=OLLAMA_RESTART),
    Spec("tuning.kv_cache_type", None, parse_kv_cache_type, "one of " + ", ".join(KV_CACHE_TYPES),
         "OLLACACHE_KV_CACHE_TYPE", None, "how the KV cache is stored (default: by GPU memory)",
         section=OLLAMA_SERVER, kind="choice", effect=OLLAMA_RESTART, choices=KV_CACHE_TYPES),
    Spec("tuning.inject_options", False, parse_bool, "true or false (also 1/0, on/off, yes/no)",
         "OLLACACHE_INJECT_OPTIONS", "--inject-options",
         "add the tuned num_thread to requests (for an attached Ollama; makes models reload, see README)",
         section=PERFORMANCE, kind="switch", effect=ENGINE_RESTART),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
