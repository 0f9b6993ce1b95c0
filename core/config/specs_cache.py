"""The ``[cache]`` settings: where answers are kept and in how much disk and memory, for how long, which answers and
how many per prompt; and ``proxy.offline``, which answers from the cache alone."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from core.config.parsing import choice, parse_bool, parse_bytes, parse_path, parse_seconds, parse_whole
from core.config.spec import APPLIED_AT_ONCE, CACHE, ENGINE_RESTART, Spec

BUCKET_MAX = 32  # the most distinct answers cache.bucket keeps per request


def parse_store(value: object) -> str:
    """A ``cache.store`` value: ``disk``, or the URL of a Redis database (``redis://``, ``rediss://``, ``unix://``)
    or of a node of a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``; a cluster has database 0 only)."""
    text = str(value).strip()
    if text == "disk":
        return text
    parts = urlsplit(text)
    if parts.scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster") and parts.hostname:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
        database = parts.path.strip("/") or parse_qs(parts.query).get("db", [""])[0]
        if database and not database.isdigit() or parts.scheme.endswith("+cluster") and database not in ("", "0"):
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


CACHE_SPECS: tuple[Spec, ...] = (
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
        "Ollacaches share (its maxmemory sets the size); redis+cluster://host:port names a node of a Redis Cluster.",
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
)
