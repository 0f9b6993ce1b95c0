"""What a warm-up is on both sides of the control API: the requests it sends, checked one by one, the
JSONL file they come from, the status the engine reports, and the two control calls.

A warm-up file has one request a line: ``{"endpoint": "/api/chat", "body": {...}}``, the endpoint one of
the cached routes and the body a JSON object the cache can key (it names a model). Blank lines are
skipped. The whole file is read and checked before anything is sent, so a bad line sends nothing; the
CLI and the tray app read files with :func:`read_file`, and ``POST /-/warm`` checks each item with
:func:`check_item`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from core.cache.request.keys import ROUTES, NotCacheable, cache_key
from core.units import human_seconds

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
FAILURES_KEPT = 100  # failures listed in a status (every one is counted)


class WarmError(ValueError):
    """A warm-up request, or a file of them, that cannot be sent: the message says where and why."""


class WarmItem(TypedDict):
    endpoint: str
    body: dict[str, Any]


class WarmFailure(TypedDict):
    index: int  # 0-based position in the list sent (the file's line numbers are counted by the reader)
    endpoint: str
    model: str
    error: str  # the upstream's status and message, or why no answer came


class WarmStatus(TypedDict, total=False):
    """``GET /-/warm``: ``state`` is idle (none run yet), running or done; the counts add up to ``total``
    once done. ``elapsed_s`` runs from the start to now, or to the end."""

    state: Literal["idle", "running", "done"]
    total: int
    sent: int
    cached: int  # already cached: skipped, nothing sent
    failed: int
    concurrency: int
    elapsed_s: float
    failures: list[WarmFailure]


def check_item(item: Any) -> WarmItem:
    """``item`` as a request to send, or :class:`WarmError` saying what is wrong with it (without where)."""
    if not isinstance(item, dict):
        raise WarmError('expected an object {"endpoint": "/api/chat", "body": {...}}')
    endpoint, body = item.get("endpoint"), item.get("body")
    if not isinstance(endpoint, str) or endpoint not in ROUTES:
        raise WarmError(
            f"the endpoint must be one of the cached routes ({', '.join(ROUTES)}), not {json.dumps(endpoint)}"
        )
    if not isinstance(body, dict):
        raise WarmError(f"the body for {endpoint} must be a JSON object")
    try:
        cache_key(endpoint, body)
    except (NotCacheable, RecursionError) as error:
        raise WarmError(f"the body for {endpoint} cannot be cached: {error}") from None
    return {"endpoint": endpoint, "body": body}


def check_items(items: Any) -> list[WarmItem]:
    """Every item of a ``POST /-/warm`` list, or :class:`WarmError` naming the first bad one (``requests[2]``)."""
    if not isinstance(items, list) or not items:
        raise WarmError('"requests" must be a non-empty list of {"endpoint": ..., "body": {...}} objects')
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(check_item(item))
        except WarmError as error:
            raise WarmError(f"requests[{index}]: {error}") from None
    return checked


@dataclass(frozen=True)
class WarmFile:
    """The checked requests of a warm-up file and the line each came from (1-based)."""

    items: list[WarmItem]
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index]


def parse_lines(lines: Sequence[str], name: str = "the file") -> WarmFile:
    """The requests of a warm-up file's lines, or :class:`WarmError` naming the first bad line (1-based)."""
    items, numbers = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError as error:
            raise WarmError(f"{name} line {number}: not JSON ({error})") from None
        try:
            items.append(check_item(parsed))
        except WarmError as error:
            raise WarmError(f"{name} line {number}: {error}") from None
        numbers.append(number)
    if not items:
        raise WarmError(f"{name} holds no requests (one JSON object a line)")
    return WarmFile(items, numbers)


def read_file(path: Path) -> WarmFile:
    """Every request of the warm-up file at ``path``, checked; :class:`WarmError` if it cannot be read or a
    line is bad (nothing is sent then)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WarmError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    return parse_lines(text.splitlines(), str(path))


def counts_text(status: WarmStatus) -> str:
    """The counts in words, the CLI's and the tray app's: "7 sent, 3 already cached, 0 failed"."""
    sent, cached, failed = status.get("sent", 0), status.get("cached", 0), status.get("failed", 0)
    return f"{sent:,} sent, {cached:,} already cached, {failed:,} failed"


def summary_text(status: WarmStatus) -> str:
    """One line at the end: "warmed 10 requests in 2.3 s: 7 sent, 3 already cached, 0 failed"."""
    total = status.get("total", 0)
    return (
        f"warmed {total:,} {'request' if total == 1 else 'requests'} in "
        f"{human_seconds(status.get('elapsed_s', 0.0))}: {counts_text(status)}"
    )
