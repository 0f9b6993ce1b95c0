"""What the proxies sharing one Redis tell each other: the deletes and clears each one makes.

Every proxy keeps a memory tier in front of the shared store, so a clear on one must reach the others'.
Each delete or clear is published, once made, on the store's channel (``ollacache:1:events``) as
``{"from", "key", "model"}``; a listener thread hears the others' (its own are not news to it) and hands them
to the engine, which drops them from its memory tier. A lost subscription is taken up again; since clears may
have been missed meanwhile, the listener then asks for everything to be forgotten (``key`` and ``model`` both
``None``).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from core.cache.storage.rediskeys import Client
from core.cache.storage.store import StoreError

RETRY_S = 1.0  # between attempts to subscribe again

Forget = Callable[[str | None, str | None], None]  # (key, model); both None: everything

log = logging.getLogger(__name__)


class Announcements:
    """Telling and hearing deletes and clears on ``channel`` of the Redis that ``client()`` connects to (shown as
    ``location``; a cluster's client finds its nodes when made, so it is asked for when needed)."""

    def __init__(self, client: Callable[[], Client], channel: str, location: str) -> None:
        self._client = client
        self.channel = channel
        self.location = location
        self.origin = uuid.uuid4().hex  # this store's own announcements are not news to it
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None

    def tell(self, key: str | None = None, model: str | None = None) -> None:
        """Publish a delete of ``key`` or a clear of ``model`` (neither: of everything), once it is made."""
        self._client().publish(self.channel, json.dumps({"from": self.origin, "key": key, "model": model}))

    def listen(self, forget: Forget) -> None:
        """Call ``forget(key, model)``, in a thread of its own, for each announcement of another store."""
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, args=(forget,), name="ollacache-redis-events", daemon=True
            )
            self._listener.start()

    def _listen(self, forget: Forget) -> None:
        lost = False
        while not self._closing.is_set():
            pubsub = None
            try:
                pubsub = self._client().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                if lost:
                    forget(None, None)
                    lost = False
                while not self._closing.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._heard(message, forget)
            except (redis.RedisError, RedisClusterException, StoreError) as error:
                if not lost:
                    log.warning("lost the Redis store's announcements at %s: %s", self.location, error)
                lost = True
                self._closing.wait(RETRY_S)
            finally:
                if pubsub is not None:
                    pubsub.close()

    def _heard(self, message: dict[str, Any], forget: Forget) -> None:
        try:
            news = json.loads(message["data"])
            if news.get("from") != self.origin:
                forget(news.get("key"), news.get("model"))
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("ignoring an unreadable announcement on %s: %s", self.channel, error)

    def close(self) -> None:
        """Stop listening (waits for the listener thread)."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join()
            self._listener = None
