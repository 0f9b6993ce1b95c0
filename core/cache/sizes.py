"""What the cache's in-memory structures cost, counted as CPython allocates them (pure, no I/O).

Every bound in bytes of a structure that grows with distinct keys (the memory tier, the memo of request
bodies, the hit counts gathered between flushes) counts its items with these functions: the objects
themselves (an entry's strings, lists, numbers; a key's ``str``; the container's own slot), not only the
payload bytes, so that a bound of N bytes holds about N bytes of the process's memory. A decoded ~1 KB
answer, for instance, costs ~1.8 KB in memory.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import Any

from core.cache.entry import Entry

# Bytes one item adds to its container, amortised over the container's growth (measured with tracemalloc
# on CPython 3.11 at the peak of a resize: 31-58 B per dict item, 66-98 B per OrderedDict item).
DICT_ITEM = 64
ORDERED_ITEM = 104
_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def deep_size(value: Any) -> int:
    """The bytes of ``value`` with those of the items of a list or tuple (one level down)."""
    size = sys.getsizeof(value)
    if isinstance(value, (list, tuple)):
        size += sum(sys.getsizeof(item) for item in value)
    return size


def entry_bytes(entry: Entry) -> int:
    """What ``entry`` holds in memory: the object, each field's value, each chunk and offset."""
    return sys.getsizeof(entry) + sum(deep_size(getattr(entry, name)) for name in _ENTRY_FIELDS)


# A hit count gathered between flushes: its key (a SHA-256 in hex), a (count, time) tuple and a dict item.
HIT_RECORD = sys.getsizeof("0" * 64) + deep_size((1, 0.5)) + DICT_ITEM
