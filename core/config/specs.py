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
from pathlib import Path
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
            return cls(name, f"unknown section [{section}] of setting {name} (known sections: {sections}) in {source}")
        return cls(name, f"unknown setting {name} (known in [{section}]: {', '.join(known[section])}) in {source}")


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


SPECS: tuple[Spec, ...] = (
    Spec(
        "proxy.host",
        "127.0.0.1",
        parse_host,
        "a host name or IP address to listen on",
        "OLLACACHE_HOST",
        "--host",
        "The address Ollacache listens on; 127.0.0.1 keeps it to this computer.",
        section=GENERAL,
        kind="text",
        effect=ENGINE_RESTART,
        label="Listen address",
        ask="Enter an IP address such as 127.0.0.1, or a host name",
    ),
    Spec(
        "proxy.port",
        11435,
        parse_port,
        "a port number from 0 to 65535 (0 picks a free port)",
        "OLLACACHE_PORT",
        "--port",
        "The port your tools connect to, unless Ollacache takes over Ollama's.",
        section=GENERAL,
        kind="number",
        effect=ENGINE_RESTART,
        label="Port",
        level="common",
        ask="Enter a port number from 1 to 65535 (or 0 to pick a free one)",
    ),
    Spec(
        "proxy.upstream",
        "http://127.0.0.1:11434",
        parse_url,
        "an http:// or https:// URL",
        "OLLACACHE_UPSTREAM",
        "--upstream",
        "The address of the Ollama that answers new prompts.",
        section=OLLAMA,
        kind="text",
        effect=ENGINE_RESTART,
        label="Ollama's address",
        level="common",
        ask="Enter an address such as http://127.0.0.1:11434",
    ),
    Spec(
        "proxy.cors_origins",
        (),
        parse_origins,
        "a list of origins, or a comma-separated string",
        "OLLACACHE_ORIGINS",
        None,
        "Web pages, besides Ollama's defaults, that may call Ollacache from a browser.",
        section=GENERAL,
        kind="list",
        effect=ENGINE_RESTART,
        label="Allowed web origins",
        ask="Enter origins separated by commas, such as https://example.com, http://localhost:3000",
    ),
    Spec(
        "cache.dir",
        None,
        parse_path,
        "a directory path",
        "OLLACACHE_CACHE_DIR",
        "--cache-dir",
        "The folder that holds the cached answers and the statistics.",
        section=CACHE,
        kind="path",
        effect=ENGINE_RESTART,
        label="Cache folder",
        level="common",
    ),
    Spec(
        "cache.size_limit",
        2 * 2**30,
        parse_bytes,
        "a byte count such as 2147483648, 500MB or 2GiB",
        "OLLACACHE_CACHE_SIZE",
        "--cache-size",
        "The most the cache may hold on disk; the least recently used answers go first.",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Cache size",
        level="common",
    ),
    Spec(
        "cache.memory_limit",
        4 * 2**20,
        parse_bytes,
        "a byte count such as 4MiB (0 turns the memory tier off)",
        "OLLACACHE_MEMORY_LIMIT",
        None,
        "Memory for the most used answers, kept in front of the disk (about 1.8 KB for a 1 KB answer; 0 turns it off).",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Memory for hot answers",
    ),
    Spec(
        "cache.ttl",
        30 * 86400,
        parse_seconds,
        "seconds, or a duration such as 90s, 12h or 30d (0 = never)",
        "OLLACACHE_TTL",
        "--ttl",
        "How long a cached answer is kept before it is asked again (0 keeps it for good).",
        section=CACHE,
        kind="duration",
        effect=ENGINE_RESTART,
        label="Keep answers for",
        level="common",
        ask="Enter a duration such as 12h or 30d (0 keeps answers for good)",
    ),
    Spec(
        "cache.sampling",
        "all",
        choice("all", "deterministic", "off"),
        "one of all, deterministic, off",
        "OLLACACHE_SAMPLING",
        None,
        "Which answers are cached: all of them, only those that cannot vary "
        "(temperature 0 or a fixed seed), or none but embeddings.",
        section=CACHE,
        kind="choice",
        effect=APPLIED_AT_ONCE,
        choices=("all", "deterministic", "off"),
        label="What to cache",
        level="common",
    ),
    Spec(
        "cache.bucket",
        1,
        parse_bucket,
        f"a whole number from 1 to {BUCKET_MAX}",
        "OLLACACHE_BUCKET",
        None,
        "How many different answers to keep for a prompt that may vary, served at "
        "random once all are stored (1 keeps one).",
        section=CACHE,
        kind="number",
        effect=APPLIED_AT_ONCE,
        label="Answers kept per prompt",
        ask=f"Enter a whole number from 1 to {BUCKET_MAX}",
    ),
    Spec(
        "cache.store",
        "disk",
        parse_store,
        "disk, or a Redis URL such as redis://host:6379/0",
        "OLLACACHE_STORE",
        "--store",
        "Where answers are kept: disk, or a Redis database that several "
        "Ollacaches share (its maxmemory sets the size).",
        "disk|URL",
        section=CACHE,
        kind="text",
        effect=ENGINE_RESTART,
        label="Storage",
        ask="Enter disk, or a Redis address such as redis://localhost:6379/0",
    ),
    Spec(
        "proxy.offline",
        False,
        parse_bool,
        "true or false (also 1/0, on/off, yes/no)",
        "OLLACACHE_OFFLINE",
        "--offline",
        "Answer from the cache only and refuse everything else, never "
        "calling or starting Ollama (for tests of your own tools).",
        section=CACHE,
        kind="switch",
        effect=ENGINE_RESTART,
        label="Offline replay",
    ),
    Spec(
        "cache.memo_limit",
        2**20,
        parse_bytes,
        "a byte count such as 1MiB (0 keys every body afresh)",
        "OLLACACHE_MEMO_LIMIT",
        None,
        "Memory for recent requests remembered with their keys, so a repeated request is not read twice.",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Memory for request keys",
    ),
    Spec(
        "cache.hits_limit",
        2**20,
        parse_bytes,
        "a byte count such as 1MiB",
        "OLLACACHE_HITS_LIMIT",
        None,
        "Memory for hit counts gathered between writes to disk.",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Memory for hit counts",
    ),
    Spec(
        "cache.sqlite_cache",
        2 * 2**20,
        parse_bytes,
        "a byte count such as 2MiB",
        "OLLACACHE_SQLITE_CACHE",
        None,
        "Memory for the cache database's page cache.",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Database page cache",
    ),
    Spec(
        "cache.sqlite_mmap",
        0,
        parse_bytes,
        "a byte count such as 64MiB (0 maps nothing)",
        "OLLACACHE_SQLITE_MMAP",
        None,
        "How much of the cache database to map into memory (it counts in Ollacache's memory; 0 maps none).",
        section=CACHE,
        kind="bytes",
        effect=ENGINE_RESTART,
        label="Database memory map",
    ),
    Spec(
        "ollama.manage",
        "auto",
        choice("auto", "always", "never"),
        "one of auto, always, never",
        "OLLACACHE_MANAGE_OLLAMA",
        "--manage-ollama",
        "Whether Ollacache starts Ollama and restarts it when it "
        "stops: auto (unless one already runs), always, or never.",
        "auto|always|never",
        section=OLLAMA,
        kind="choice",
        effect=ENGINE_RESTART,
        choices=("auto", "always", "never"),
        label="Start and watch Ollama",
        level="common",
    ),
    Spec(
        "ollama.binary",
        None,
        parse_path,
        "the path of the ollama executable",
        "OLLACACHE_OLLAMA_BINARY",
        "--ollama-binary",
        "The Ollama program to start, if it is not found on its own.",
        "PATH",
        section=OLLAMA,
        kind="path",
        effect=ENGINE_RESTART,
        label="Ollama program",
        level="common",
    ),
    Spec(
        "ollama.port_takeover",
        True,
        parse_bool,
        "true or false (also 1/0, on/off, yes/no)",
        "OLLACACHE_PORT_TAKEOVER",
        "--port-takeover",
        "When Ollacache starts Ollama, it answers at Ollama's usual port (11434) so that your tools need no change.",
        section=GENERAL,
        kind="switch",
        effect=ENGINE_RESTART,
        label="Take over Ollama's port",
        level="common",
    ),
    Spec(
        "ollama.start_wait",
        30.0,
        parse_seconds,
        "seconds, or a duration such as 30s or 2m (0 = do not wait)",
        "OLLACACHE_START_WAIT",
        None,
        "How long a request waits for an Ollama that is still starting.",
        section=OLLAMA,
        kind="duration",
        effect=ENGINE_RESTART,
        label="Wait for Ollama to start",
        ask="Enter a duration such as 30s or 2m (0: do not wait)",
    ),
    Spec(
        "ollama.env",
        {},
        parse_env_map,
        "a table of NAME = value, or NAME=value,NAME2=value2",
        "OLLACACHE_OLLAMA_ENV",
        None,
        "Extra environment variables for the Ollama that Ollacache starts (they win over the tuning).",
        section=OLLAMA_SERVER,
        kind="table",
        effect=OLLAMA_RESTART,
        label="Extra variables",
        ask="Enter NAME=value pairs separated by commas, such as OLLAMA_DEBUG=1",
    ),
    Spec(
        "ollama.models_dir",
        None,
        parse_path,
        "a directory path",
        "OLLACACHE_OLLAMA_MODELS",
        None,
        "The folder where the Ollama that Ollacache starts keeps its models (OLLAMA_MODELS).",
        section=OLLAMA_SERVER,
        kind="path",
        effect=OLLAMA_RESTART,
        label="Models folder",
    ),
    Spec(
        "ollama.origins",
        (),
        parse_origins,
        "a list of origins, or a comma-separated string",
        "OLLACACHE_OLLAMA_ORIGINS",
        None,
        "Web pages, besides the defaults, that may call the Ollama that Ollacache starts directly (OLLAMA_ORIGINS).",
        section=OLLAMA_SERVER,
        kind="list",
        effect=OLLAMA_RESTART,
        label="Ollama's allowed origins",
        ask="Enter origins separated by commas, such as https://example.com",
    ),
    Spec(
        "log.dir",
        None,
        parse_path,
        "a directory path",
        "OLLACACHE_LOG_DIR",
        "--log-dir",
        "The folder for Ollacache's and Ollama's logs.",
        section=OLLAMA,
        kind="path",
        effect=ENGINE_RESTART,
        label="Log folder",
    ),
    Spec(
        "tuning.num_thread",
        None,
        parse_whole(1),
        "a whole number of threads, at least 1",
        "OLLACACHE_NUM_THREAD",
        "--num-thread",
        "How many processor threads Ollama gives a model (best: one per performance core).",
        "N",
        section=PERFORMANCE,
        kind="number",
        effect=OLLAMA_RESTART,
        label="Threads per model",
        level="common",
        ask="Enter a whole number of threads, 1 or more",
    ),
    Spec(
        "tuning.num_ctx",
        None,
        parse_whole(1),
        "a context length in tokens, at least 1",
        "OLLACACHE_NUM_CTX",
        None,
        "How many tokens of conversation a model keeps in mind (OLLAMA_CONTEXT_LENGTH).",
        section=OLLAMA_SERVER,
        kind="number",
        effect=OLLAMA_RESTART,
        label="Context length",
        ask="Enter a number of tokens, such as 8192",
    ),
    Spec(
        "tuning.keep_alive",
        None,
        parse_keep_alive,
        "a duration as Ollama takes it, such as 30m, 1h, 300 (seconds) or -1 (forever)",
        "OLLACACHE_KEEP_ALIVE",
        None,
        "How long Ollama keeps a model in memory after its last request.",
        section=OLLAMA_SERVER,
        kind="text",
        effect=OLLAMA_RESTART,
        label="Keep models loaded for",
        ask="Enter a duration such as 30m or 1h (-1 keeps models loaded)",
    ),
    Spec(
        "tuning.num_parallel",
        None,
        parse_whole(1),
        "a whole number, at least 1",
        "OLLACACHE_NUM_PARALLEL",
        None,
        "How many requests a loaded model answers at once.",
        section=OLLAMA_SERVER,
        kind="number",
        effect=OLLAMA_RESTART,
        label="Requests at once",
        ask="Enter a whole number, 1 or more",
    ),
    Spec(
        "tuning.max_loaded_models",
        None,
        parse_whole(0),
        "a whole number, at least 0 (0 lets Ollama decide: 3 per GPU, or 3 on CPU)",
        "OLLACACHE_MAX_LOADED_MODELS",
        None,
        "How many models Ollama keeps loaded side by side (0 lets it decide).",
        section=OLLAMA_SERVER,
        kind="number",
        effect=OLLAMA_RESTART,
        label="Models loaded at once",
        ask="Enter a whole number, 0 or more",
    ),
    Spec(
        "tuning.flash_attention",
        None,
        parse_bool,
        "true or false (also 1/0, on/off, yes/no)",
        "OLLACACHE_FLASH_ATTENTION",
        None,
        "A faster, leaner way of computing attention (on by default with a GPU).",
        section=OLLAMA_SERVER,
        kind="switch",
        effect=OLLAMA_RESTART,
        label="Flash attention",
    ),
    Spec(
        "tuning.kv_cache_type",
        None,
        parse_kv_cache_type,
        "one of " + ", ".join(KV_CACHE_TYPES),
        "OLLACACHE_KV_CACHE_TYPE",
        None,
        "How precisely a model's working memory is stored (smaller types save memory).",
        section=OLLAMA_SERVER,
        kind="choice",
        effect=OLLAMA_RESTART,
        choices=KV_CACHE_TYPES,
        label="Working memory type",
    ),
    Spec(
        "tuning.inject_options",
        False,
        parse_bool,
        "true or false (also 1/0, on/off, yes/no)",
        "OLLACACHE_INJECT_OPTIONS",
        "--inject-options",
        "Add the tuned thread count to each request, for an "
        "Ollama that Ollacache did not start (models then reload; see the README).",
        section=PERFORMANCE,
        kind="switch",
        effect=ENGINE_RESTART,
        label="Add threads to requests",
    ),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
