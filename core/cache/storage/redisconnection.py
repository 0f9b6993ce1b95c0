"""How the Redis store reaches Redis: one server's client, or a Redis Cluster's, made on first use.

A URL ``redis+cluster://host:port`` (``rediss+cluster://`` with TLS) names a node of a cluster: its client asks
that node for the others when made, so it is made on the first call rather than when the store opens (a proxy
starts while Redis is away). The store's keys live in one slot there (see :mod:`core.cache.storage.rediskeys`),
and the calls a cluster sends to every node by default go to that slot's primary alone (:meth:`on_slot`).
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from core.cache.storage.rediskeys import CLUSTER, SINGLE, Client, Layout
from core.cache.storage.store import StoreError

TIMEOUT_S = 2.0
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
ERRORS = (redis.RedisError, RedisClusterException)  # the latter: a cluster none of whose nodes answer, say


def cluster_url(url: str) -> str | None:
    """The ``redis://`` URL of the cluster node that ``url`` names as ``redis+cluster://`` (or with TLS); ``None``
    when ``url`` names a single server."""
    scheme, sep, rest = url.partition("://")
    return CLUSTER_SCHEMES[scheme] + sep + rest if sep and scheme in CLUSTER_SCHEMES else None


class Connection:
    """The client for the Redis at ``url`` (shown as ``location``) and the :class:`Layout` of keys it takes.

    Raises :class:`StoreError` for a URL that cannot be used; connects to nothing.
    """

    def __init__(self, url: str, location: str) -> None:
        self.location = location
        self._cluster = cluster_url(url)
        self.layout: Layout = CLUSTER if self._cluster else SINGLE
        self._options = {
            "socket_timeout": TIMEOUT_S,
            "socket_connect_timeout": TIMEOUT_S,
            "health_check_interval": 30,
            # one retry on a refused or broken connection (a pooled one from before a restart is stale), none
            # on a timeout: a Redis that does not answer costs one TIMEOUT_S, then reads miss at once
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        }
        self._redis: Client | None = None
        self._making = threading.Lock()  # the listener thread and the engine may both make a cluster's client
        try:
            if self._cluster:
                if int(parse_url(self._cluster).get("db", 0)) != 0:
                    raise ValueError("a Redis Cluster has database 0 only")
            else:
                self._redis = redis.Redis.from_url(url, **self._options)
        except ValueError as error:
            raise StoreError(f"cannot use the Redis store {location}: {error}") from error

    def client(self) -> Client:
        """The client; a cluster's is made on first use, when it asks a node for the others (raises what
        :data:`ERRORS` names when none answers)."""
        made = self._redis  # once made, read without the lock: this is on the path of every read
        return made if made is not None else self._make()

    def _make(self) -> Client:
        with self._making:
            if self._redis is None:
                assert self._cluster is not None
                try:
                    self._redis = redis.RedisCluster.from_url(self._cluster, **self._options)
                except ValueError as error:
                    raise StoreError(f"cannot use the Redis store {self.location}: {error}") from error
            return self._redis

    def on_slot(self, client: Client) -> dict[str, Any]:
        """Where a call a cluster sends to every node by default goes instead: the primary of the store's slot,
        so that a node holding none of the store (down, or busy with other data) does not matter. Nothing to say
        for one server."""
        if isinstance(client, redis.RedisCluster):
            return {"target_nodes": client.get_node_from_key(self.layout.entry)}
        return {}

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
