"""The in-memory tier in front of the store: the hottest entries, bounded in bytes (LRU).

A hit found here costs a dict lookup instead of a SQLite read and a decode. It only ever holds
entries that are also in (or on their way to) the store, so losing it loses nothing. The bound counts
what an entry holds in memory (:func:`core.cache.sizes.entry_bytes`: its strings, lists and numbers
besides the answer's bytes, and its place in the LRU), so ``max_bytes`` is memory, not payload.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass

from core.cache.entry import Entry
from core.cache.sizes import ORDERED_ITEM, entry_bytes


@dataclass(slots=True)
class HotEntry:
    entry: Entry
    size: int


class HotTier:
    """An LRU of entries holding at most ``max_bytes`` of memory, entries and their overhead (0 disables it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, HotEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, now: float) -> Entry | None:
        item = self._items.get(key)
        if item is None:
            return None
        if not item.entry.live(now):
            self.discard(key)
            return None
        self._items.move_to_end(key)
        return item.entry

    def put(self, entry: Entry) -> None:
        self.discard(entry.key)  # an older answer under this key must not outlive the new one
        size = self.cost(entry)
        if size > self.max_bytes // 4:
            return  # one huge answer must not flush everything else out
        self._items[entry.key] = HotEntry(entry, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, oldest = self._items.popitem(last=False)
            self.bytes -= oldest.size

    @staticmethod
    def cost(entry: Entry) -> int:
        """The bytes ``entry`` counts against the bound: the entry's objects and its item in the LRU."""
        return entry_bytes(entry) + ORDERED_ITEM + _HOT_ENTRY

    def discard(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item.size

    def clear(self, model: str | None = None) -> None:
        if model is None:
            self._items.clear()
            self.bytes = 0
            return
        for key in [k for k, item in self._items.items() if item.entry.model == model]:
            self.discard(key)


_HOT_ENTRY = sys.getsizeof(HotEntry(Entry("", "", "", False, "", []), 0))
