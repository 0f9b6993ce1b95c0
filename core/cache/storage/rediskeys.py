"""Where the Redis store keeps things, in what form, and how it walks its entries.

Each entry is its blob under ``ollacache:1:e:<key>`` (:attr:`Layout.entry`). Besides the entries the store keeps
two keys (:attr:`Layout.bookkeeping`): ``ollacache:1:hits`` (a hash: hit count and last hit of each entry,
``"count last"``, added to by :data:`COUNT_HITS` and read by :func:`hit_record`) and ``ollacache:1:recent`` (a
sorted set of the newest keys by last use, bounded at :data:`RECENT_KEEP`). Deletes and clears are announced on
``ollacache:1:events``.

On a Redis Cluster the prefix is ``{ollacache}:1:`` (:data:`CLUSTER`): the braces make it the only part of a key
that the cluster hashes, so every key of the store lives in one slot, and the transactions and the script that
touch an entry and the bookkeeping together are allowed there.

There is no index by model, since an LRU policy may evict an index while its entries stay: whoever needs an
entry's model reads it from the head of its blob (:func:`models_of`, ``GETRANGE``), a :func:`scan_batches`
batch at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from core.cache.entry import MAGIC, CorruptEntry, Entry

Client = redis.Redis | redis.RedisCluster

RECENT_KEEP = 10_000  # keys on the recent list
SCAN_BATCH = 500
HEADER_PEEK = 4096  # bytes read of a blob to know its model; a longer header is read whole


@dataclass(frozen=True)
class Layout:
    """The names of the store's keys under ``prefix``; its version is that of the layout (a new one takes a new
    prefix)."""

    prefix: str

    @property
    def entry(self) -> str:
        """The prefix of every entry's key: ``entry + key`` holds its blob."""
        return self.prefix + "e:"

    @property
    def hits(self) -> str:
        return self.prefix + "hits"  # hash: key -> "count last"

    @property
    def recent(self) -> str:
        return self.prefix + "recent"  # sorted set: key -> last use (stored or hit), the newest RECENT_KEEP

    @property
    def events(self) -> str:
        return self.prefix + "events"  # the pub/sub channel of deletes and clears

    @property
    def bookkeeping(self) -> tuple[str, str]:
        return self.hits, self.recent


SINGLE = Layout("ollacache:1:")  # one Redis server
CLUSTER = Layout("{ollacache}:1:")  # a Redis Cluster: every key in the slot of "ollacache"


# Add a flushed hit count to an entry that still exists (its last hit moves it up the recent list).
COUNT_HITS = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[3])
  return 0
end
local old = redis.call('HGET', KEYS[2], ARGV[3])
local count = tonumber(ARGV[1])
if old then count = count + tonumber(string.match(old, '^(%d+)')) end
redis.call('HSET', KEYS[2], ARGV[3], count .. ' ' .. ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[3])
return 1
"""


def hit_record(record: bytes | None) -> tuple[int, float | None]:
    """The hit count and last hit in an entry's :attr:`Layout.hits` record (none yet: ``0, None``)."""
    if record is None:
        return 0, None
    count, _, last = record.decode().partition(" ")
    return int(count), float(last)


def scan_batches(client: Client, layout: Layout, **where: Any) -> Iterator[list[str]]:
    """The names of every entry, a batch of at most :data:`SCAN_BATCH` at a time (``where``: a cluster's node to
    walk, as its ``SCAN`` walks every node by default)."""
    batch: list[str] = []
    for name in client.scan_iter(match=layout.entry + "*", count=SCAN_BATCH, **where):
        batch.append(name.decode())
        if len(batch) == SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def models_of(client: Client, names: list[str]) -> list[str | None]:
    """The model of each entry named, in order (``None`` for one gone or unreadable): the first
    :data:`HEADER_PEEK` bytes of every blob in one round trip, then any longer header read whole."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.getrange(name, 0, HEADER_PEEK - 1)
    peeks = pipe.execute()
    return [_model_of(client, name, peek) for name, peek in zip(names, peeks, strict=True)]


def _model_of(client: Client, name: str, peek: bytes) -> str | None:
    """The model in an entry's header, from the first bytes of its blob (the whole blob if need be)."""
    end = peek.find(b"\n", len(MAGIC))
    if not peek.startswith(MAGIC):
        return None
    if end < 0:
        whole = client.get(name)
        if whole is None:
            return None
        peek, end = whole, whole.find(b"\n", len(MAGIC))
    try:
        model = json.loads(peek[len(MAGIC) : end])["model"]
    except (ValueError, KeyError, TypeError):
        return None
    return model if isinstance(model, str) else None


def decoded(blob: bytes | None) -> Entry | None:
    """The entry in ``blob``; ``None`` for a missing or unreadable one."""
    if blob is None:
        return None
    try:
        return Entry.decode(blob)
    except CorruptEntry:
        return None
