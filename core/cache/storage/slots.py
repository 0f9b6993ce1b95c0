"""Finding the entry that answers a request under the sampling policy: its key itself, or one of the
slots of its bucket (``cache.bucket``) for a sampled request.

While a bucket fills, its slots are read in order up to the first empty one, and the request is a miss
that records into that slot; once every slot holds an answer, one is served at random
(:func:`~core.cache.request.decision.choose_slot` decides, pure). Under the default policy the proxy does not come
here: it reads the key itself, one lookup.
"""

from __future__ import annotations

from random import Random

from core.cache.entry import Entry
from core.cache.request.decision import Policy, Request, choose_slot
from core.cache.request.keys import slot_key
from core.cache.storage.layered import LayeredCache


def find(
    cache: LayeredCache, policy: Policy, request: Request, looks_up: bool, now: float, rng: Random
) -> tuple[str, Entry | None]:
    """The key that answers or records ``request`` and the live entry under it (``looks_up``: the store may
    be read; ``now``: wall-clock seconds). Nothing is read for a request the policy leaves out."""
    slots = policy.slots(request)
    if slots == 1:
        found_one = cache.lookup(request.key, now) if looks_up else None
        if found_one is None and looks_up and request.legacy_key is not None:
            found_one = cache.lookup(request.legacy_key, now)  # stored while the request's options were in keys
        return request.key, found_one
    if slots == 0:
        return request.key, None
    found: list[Entry | None] = []
    if looks_up:
        for index in range(slots):
            found.append(cache.lookup(slot_key(request.key, index), now))
            if found[-1] is None:
                break
    index = choose_slot(found, slots, rng)
    return slot_key(request.key, index), found[index] if index < len(found) else None
