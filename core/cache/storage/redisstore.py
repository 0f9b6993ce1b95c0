"""A store on Redis, shared by every proxy that names the same server and database, or the same Redis Cluster.

Each entry is the disk store's blob (:meth:`Entry.encode`) under its own key (the layout, with the hit
counts and the recent list beside the entries, is :mod:`core.cache.storage.rediskeys`), written with one
``SET`` so a reader never sees half an entry, with Redis's own expiry at the entry's ``expires`` (``PXAT``;
none for 0). Size is Redis's business: bound it with ``maxmemory`` and an LRU ``maxmemory-policy``
(``allkeys-lru``); a hit is a ``GET``, which is what Redis's LRU counts as use. Hit counts are written in
batches by :meth:`RedisStore.flush`, as on disk. The database should be Ollacache's own (the ``/db`` of the
URL): :meth:`RedisStore.count` is the database's size less the store's bookkeeping.

Clearing one model reads the model from each entry's header instead of keeping a per-model index, since a
clear must never miss an entry. Every delete and clear is published on ``ollacache:1:events``; a proxy
:meth:`RedisStore.listen`\\ s there, so the others drop what their memory tiers hold of it.

A URL ``redis+cluster://host:port`` names a node of a Redis Cluster (:mod:`core.cache.storage.redisconnection`).
Every key of the store is in one slot there, so the cluster keeps the store on one primary and its replicas: a
cluster gives it failover and room beside other data, not a store spread over the nodes.

A lost connection marks the store down: reads then miss at once, writes raise :class:`StoreError` (the
proxy passes requests through and says why), until :meth:`RedisStore.ping` finds Redis again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import redis
from redis.exceptions import RedisClusterException

from core.cache.entry import CorruptEntry, Entry
from core.cache.storage.redisconnection import ERRORS, Connection
from core.cache.storage.rediskeys import (
    COUNT_HITS,
    RECENT_KEEP,
    decoded,
    hit_record,
    models_of,
    scan_batches,
)
from core.cache.storage.redisnews import Announcements, Forget
from core.cache.storage.store import StoreError
from core.config.parsing import redact

log = logging.getLogger(__name__)


class RedisStore:
    """A :class:`core.cache.storage.store.Store` on the Redis at ``url`` (``redis://[:password@]host:port/db``, or
    ``redis+cluster://[:password@]host:port`` for a cluster).

    Opening connects to nothing: the first call does (a cluster's client is made then, as it asks for the nodes).
    ``clock`` (wall-clock seconds) decides which entries are live on a read, as on disk; Redis's own expiry
    removes them.
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.location = redact(url)
        self.clock = clock
        self.down: str | None = None  # why the connection is lost, until ping finds it again
        self._connection = Connection(url, self.location)
        self._client, self._on_slot = self._connection.client, self._connection.on_slot
        self.layout = self._connection.layout
        self._entry, self._hits_key, self._recent = self.layout.entry, self.layout.hits, self.layout.recent
        self._hits: dict[str, tuple[int, float]] = {}
        self._news = Announcements(self._client, self.layout.events, self.location)

    # --- failures ---------------------------------------------------------------------------------

    def _failed(self, error: Exception) -> StoreError:
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError, RedisClusterException)):
            if self.down is None:
                log.error("lost the Redis store at %s: %s", self.location, error)
            self.down = f"cannot reach Redis at {self.location}: {error}"
            return StoreError(self.down)
        return StoreError(f"Redis at {self.location}: {error}")

    def _check(self) -> None:
        if self.down is not None:
            raise StoreError(self.down)

    def ping(self) -> bool:
        """Check the connection; ``True`` when Redis answers again after it was lost (:attr:`down` is then
        cleared). Raises :class:`StoreError` when it does not answer."""
        try:
            client = self._client()
            client.ping(**self._on_slot(client))
        except ERRORS as error:
            raise self._failed(error) from None
        if self.down is None:
            return False
        log.info("the Redis store at %s answers again", self.location)
        self.down = None
        return True

    # --- entries ----------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        if self.down is not None:
            return None  # already reported: a miss, without waiting on a connection
        try:
            blob = self._client().get(self._entry + key)
        except ERRORS as error:
            raise self._failed(error) from None
        if blob is None:
            return None
        try:
            entry = Entry.decode(blob)
        except CorruptEntry as error:
            log.warning("dropping unreadable entry %s: %s", key, error)
            try:
                self._client().delete(self._entry + key)
            except ERRORS as failure:
                raise self._failed(failure) from None
            return None
        return entry if entry.live(self.clock()) else None

    def put(self, entry: Entry) -> None:
        self.put_many([entry])

    def put_many(self, entries: list[Entry]) -> None:
        """Write ``entries`` in one transaction (``MULTI``/``EXEC``): all of them, or none on an error."""
        self._check()
        now = self.clock()
        live = [entry for entry in entries if entry.live(now)]
        if not live:
            return
        try:
            pipe = self._client().pipeline(transaction=True)
            for entry in live:
                expires = round(entry.expires * 1000) if entry.expires else None
                pipe.set(self._entry + entry.key, entry.encode(), pxat=expires)
                pipe.zadd(self._recent, {entry.key: now})
            pipe.zremrangebyrank(self._recent, 0, -RECENT_KEEP - 1)
            pipe.execute()
        except ERRORS as error:
            raise self._failed(error) from None

    def delete(self, key: str) -> bool:
        self._check()
        self._hits.pop(key, None)
        try:
            pipe = self._client().pipeline(transaction=True)
            pipe.delete(self._entry + key)
            pipe.hdel(self._hits_key, key)
            pipe.zrem(self._recent, key)
            removed = pipe.execute()[0]
            self._news.tell(key=key)
        except ERRORS as error:
            raise self._failed(error) from None
        return bool(removed)

    def clear(self, model: str | None = None) -> int:
        self._check()
        self._hits.clear()
        try:
            removed = self._clear_all() if model is None else self._clear_model(model)
            self._news.tell(model=model)
        except ERRORS as error:
            raise self._failed(error) from None
        return removed

    def _clear_all(self) -> int:
        client, removed = self._client(), 0
        for keys in scan_batches(client, self.layout, **self._on_slot(client)):
            removed += client.unlink(*keys)
        client.unlink(*self.layout.bookkeeping)
        return removed

    def _clear_model(self, model: str) -> int:
        client, removed = self._client(), 0
        for keys in scan_batches(client, self.layout, **self._on_slot(client)):
            theirs = [name for name, found in zip(keys, models_of(client, keys), strict=True) if found == model]
            if not theirs:
                continue
            short = [name[len(self._entry) :] for name in theirs]
            pipe = client.pipeline(transaction=True)
            pipe.unlink(*theirs)
            pipe.hdel(self._hits_key, *short)
            pipe.zrem(self._recent, *short)
            removed += pipe.execute()[0]
        return removed

    def entries(self, model: str | None = None) -> Iterator[Entry]:
        """Every live entry, or one model's, read a batch at a time (``SCAN``, then ``MGET``)."""
        self._check()
        try:
            client = self._client()
            for names in scan_batches(client, self.layout, **self._on_slot(client)):
                now = self.clock()
                for blob in client.mget(names):
                    entry = decoded(blob)
                    if entry is not None and entry.live(now) and (model is None or entry.model == model):
                        yield entry
        except ERRORS as error:
            raise self._failed(error) from None

    def recent(self, limit: int = 100, model: str | None = None) -> list[dict[str, object]]:
        """Entries by last use (stored or hit), most recent first, from the recent list."""
        self._check()
        infos: list[dict[str, object]] = []
        start, page = 0, max(limit, 100)
        try:
            client = self._client()
            while len(infos) < limit:
                keys = [key.decode() for key in client.zrevrange(self._recent, start, start + page - 1)]
                if not keys:
                    break
                start += page
                blobs = client.mget([self._entry + key for key in keys])
                records = client.hmget(self._hits_key, keys)
                now = self.clock()
                gone = []
                for key, blob, record in zip(keys, blobs, records, strict=True):
                    entry = decoded(blob)
                    if entry is None or not entry.live(now):
                        gone.append(key)
                        continue
                    if model is not None and entry.model != model:
                        continue
                    info = entry.info()
                    info["hits"], info["last_hit"] = self._hit_record(key, record)
                    infos.append(info)
                    if len(infos) == limit:
                        break
                if gone:
                    client.zrem(self._recent, *gone)  # expired or evicted: no longer listed
                    start -= len(gone)
        except ERRORS as error:
            raise self._failed(error) from None
        return infos

    def _hit_record(self, key: str, record: bytes | None) -> tuple[int, float | None]:
        stored_count, stored_last = hit_record(record)
        pending = self._hits.get(key, (0, None))
        return stored_count + pending[0], pending[1] or stored_last

    # --- hit counts -------------------------------------------------------------------------------

    def note_hit(self, key: str, when: float) -> None:
        count, _ = self._hits.get(key, (0, when))
        self._hits[key] = (count + 1, when)

    def flush(self) -> None:
        """Add the hits counted since the last flush, in one round trip (nothing while Redis is away)."""
        pending, self._hits = self._hits, {}
        if not pending or self.down is not None:
            return
        try:
            client = self._client()
            # loaded first, as a cluster's pipeline does not load a script itself
            script = client.execute_command("SCRIPT LOAD", COUNT_HITS, **self._on_slot(client))
            pipe = client.pipeline(transaction=False)
            for key, (count, last) in pending.items():
                pipe.evalsha(script, 3, self._entry + key, self._hits_key, self._recent, count, repr(last), key)
            pipe.execute()
        except ERRORS as error:
            raise self._failed(error) from None

    # --- size -------------------------------------------------------------------------------------

    def count(self) -> int:
        """Entries: the database's keys less the store's own bookkeeping (the database is Ollacache's); on a
        cluster, the keys in the store's slot, less the same."""
        self._check()
        try:
            client = self._client()
            if isinstance(client, redis.RedisCluster):
                size = client.cluster_countkeysinslot(client.keyslot(self._entry))
            else:
                size = client.dbsize()
            bookkeeping = client.exists(*self.layout.bookkeeping)
        except ERRORS as error:
            raise self._failed(error) from None
        return max(0, int(size) - int(bookkeeping))

    def count_by_model(self) -> dict[str, int]:
        """A walk of the keys reading each entry's header (Redis keeps no index by model; see the module)."""
        self._check()
        counts: dict[str, int] = {}
        try:
            client = self._client()
            for keys in scan_batches(client, self.layout, **self._on_slot(client)):
                for model in models_of(client, keys):
                    if model is not None:
                        counts[model] = counts.get(model, 0) + 1
        except ERRORS as error:
            raise self._failed(error) from None
        return counts

    def volume(self) -> int:
        """Bytes the Redis server uses for its data (``INFO memory``, ``used_memory``); on a cluster, the node
        that holds the store's slot."""
        self._check()
        try:
            client = self._client()
            return int(client.info("memory", **self._on_slot(client))["used_memory"])
        except ERRORS as error:
            raise self._failed(error) from None

    def listen(self, forget: Forget) -> None:
        """Call ``forget(key, model)`` (in a thread of the store's) for each delete or clear another proxy on
        this Redis announces (see :class:`core.cache.storage.redisnews.Announcements`). Ends with :meth:`close`."""
        self._news.listen(forget)

    def close(self) -> None:
        """Flush hit counts, stop listening and release the connections."""
        try:
            self.flush()
        except StoreError as error:
            log.error("could not save hit counts: %s", error)
        finally:
            self._news.close()
            self._connection.close()
