"""Where two JSON documents differ, field by field (pure, no I/O): what explains a miss.

Two canonical request forms are walked side by side; each leaf (or member present on one side only) that
differs is one :class:`Difference`, named by a JSON path as people write it (``messages[0].content``,
``options.temperature``). Long strings are shown as an excerpt around where they first differ, so a
timestamp in a long system prompt is seen at once and a base64 image is never copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXCERPT = 40  # characters shown on each side of the first difference in a long string
LONG = 2 * EXCERPT + 40  # strings longer than this are shown as an excerpt


class _Missing:
    """The value on the side that lacks a member."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Difference:
    """One field that differs: its path, the stored value and the requested one (:data:`MISSING` if absent)."""

    path: str
    stored: Any
    requested: Any

    def to_json(self) -> dict[str, Any]:
        """The difference as JSON: a side without the field has no ``stored`` or ``requested`` member, and
        long strings are excerpts (``…`` marks what is left out)."""
        stored, requested = shown(self.stored, self.requested)
        data: dict[str, Any] = {"path": self.path}
        if self.stored is not MISSING:
            data["stored"] = stored
        if self.requested is not MISSING:
            data["requested"] = requested
        return data


def differences(stored: Any, requested: Any, path: str = "") -> list[Difference]:
    """Every field where ``requested`` differs from ``stored``, in document order (objects by sorted key).

    Objects are compared member by member and lists item by item (an item past the end of the shorter
    list is missing on that side); anything else is compared whole. ``1`` and ``1.0`` are equal, ``1``
    and ``true`` are not.
    """
    if isinstance(stored, dict) and isinstance(requested, dict):
        found: list[Difference] = []
        for key in sorted(stored.keys() | requested.keys()):
            found += differences(stored.get(key, MISSING), requested.get(key, MISSING), _member(path, key))
        return found
    if isinstance(stored, list) and isinstance(requested, list):
        found = []
        for index in range(max(len(stored), len(requested))):
            found += differences(
                stored[index] if index < len(stored) else MISSING,
                requested[index] if index < len(requested) else MISSING,
                f"{path}[{index}]",
            )
        return found
    if _same(stored, requested):
        return []
    return [Difference(path or "$", stored, requested)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _member(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` for a key that is not a plain name."""
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{_quote(key)}]"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shown(stored: Any, requested: Any) -> tuple[Any, Any]:
    """The two values as shown to people: two long strings as excerpts around where they first differ,
    any other long string cut after its start; other values as they are."""
    if isinstance(stored, str) and isinstance(requested, str) and max(len(stored), len(requested)) > LONG:
        start = _first_difference(stored, requested)
        return _excerpt(stored, start), _excerpt(requested, start)
    return _alone(stored), _alone(requested)


def _alone(value: Any) -> Any:
    return value[:LONG] + "…" if isinstance(value, str) and len(value) > LONG else value


def _first_difference(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _excerpt(text: str, at: int) -> str:
    start, end = max(0, at - EXCERPT), min(len(text), at + EXCERPT)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
