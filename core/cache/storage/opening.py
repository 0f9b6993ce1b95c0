"""Opening the store that ``cache.store`` names: the embedded disk store, or a Redis URL.

One function for every user of a store (the engine, and commands that work on the store directly), so
they all open the same thing the same way.
"""

from __future__ import annotations

import logging

from core.cache.storage.diskstore import DiskStore
from core.cache.storage.store import NullStore, Store, StoreError
from core.config.parsing import redact
from core.config.settings import Settings

log = logging.getLogger(__name__)

DISK = "disk"


def open_store(settings: Settings) -> tuple[Store, str | None]:
    """The configured store and ``None``, or with the reason it cannot be used now.

    A disk store that cannot open is replaced by a :class:`NullStore` (a pass-through). A Redis store is
    returned even when Redis does not answer yet, marked down, so that it is used as soon as Redis
    answers (:meth:`RedisStore.ping`).
    """
    where: str = settings["cache.store"]
    if where == DISK:
        try:
            return DiskStore(
                settings.cache_dir,
                settings["cache.size_limit"],
                sqlite_cache=settings["cache.sqlite_cache"],
                sqlite_mmap=settings["cache.sqlite_mmap"],
            ), None
        except StoreError as error:  # serve as a pass-through rather than not at all
            log.error("%s; serving without a cache", error)
            return NullStore(str(settings.cache_dir), str(error)), str(error)
    from core.cache.storage.redisstore import RedisStore  # the redis package (6 MB) only for those who use it

    try:
        store = RedisStore(where)
    except StoreError as error:
        log.error("%s; serving without a cache", error)
        return NullStore(redact(where), str(error)), str(error)
    try:
        store.ping()
    except StoreError as error:
        log.error("%s; serving as a pass-through until it answers", error)
        return store, str(error)
    return store, None


def open_store_or_fail(settings: Settings) -> Store:
    """The configured store, for a command that works on it directly (export, import, a clear with no proxy);
    raises :class:`StoreError` saying why when it cannot be used now."""
    store, error = open_store(settings)
    if error is not None:
        store.close()
        raise StoreError(error)
    return store
