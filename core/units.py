"""Numbers and lists for people: byte counts and durations with their units, as the CLI, the tuning reasons
and the desktop app show them (thousands separators, binary units), and lists as a sentence writes them. Imports
nothing of the engine, so every layer
may use it."""

from __future__ import annotations


def count(value: float | None) -> str:
    """A whole number with thousands separators ("12,345"); "–" when unknown."""
    return "–" if value is None else f"{value:,.0f}"


def plural(value: float, one: str, many: str | None = None) -> str:
    """A count and its noun: "1 hit", "2,048 hits"."""
    return f"{count(value)} {one if value == 1 else (many or one + 's')}"


def listing(items: list[str]) -> str:
    """Items as a sentence lists them: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def human_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TiB"  # pragma: no cover - the loop returns at GiB


def human_seconds(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
