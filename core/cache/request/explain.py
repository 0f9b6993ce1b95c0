"""Why a request missed: its canonical form, its key, whether it is cached, and if not the stored entries of
its model and route that differ least from it, with the fields that differ (:mod:`core.cache.request.diff`).

The key is the one the proxy would use now: it comes from the engine's own :class:`RequestKeys`, with its
context (the server settings Ollacache applies, and the request's credential and namespace, which are
hashed, never shown). Stored entries are compared by the canonical form of the request body each one
keeps, so the fields named are those the key is made of. An entry stored before entries kept their
request cannot be compared, and is counted apart.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.cache.entry import Entry
from core.cache.request.controls import ControlsError, parse_namespace
from core.cache.request.diff import differences
from core.cache.request.keys import ROUTES, NotCacheable, Route, canonical_request, request_model
from core.cache.request.requests import RequestKeys, credential_of

NEAREST = 3  # stored entries shown for a miss
MAX_COMPARED = 20_000  # stored entries compared at most (a model with more is compared in part)
SAME_BODY = (
    "the same request body: the key differs by what is not in the body (the Authorization or x-api-key header, "
    "X-Cache-Namespace, the model's build, or the server settings Ollacache applies to Ollama)"
)
ACCEPTED = (
    '{"endpoint": one of ' + ", ".join(ROUTES) + ', "body": the request\'s JSON object, '
    '"headers": {"Authorization": ..., "X-Cache-Namespace": ...} (optional)}'
)


class ExplainError(ValueError):
    """A request to explain that is not one: the message says what is wrong."""


@dataclass(frozen=True)
class Asked:
    """A request to explain, keyed: its route, canonical form and key."""

    route: Route
    model: str
    canonical: dict[str, Any]
    key: str


def ask(payload: Any, keys: RequestKeys) -> Asked:
    """Read ``{"endpoint", "body", "headers"?}`` and key it as the proxy would now; raises :class:`ExplainError`."""
    if not isinstance(payload, dict):
        raise ExplainError(f"expected {ACCEPTED}")
    unknown = sorted(set(payload) - {"endpoint", "body", "headers"})
    if unknown:
        raise ExplainError(f"unknown field {unknown[0]!r}; expected {ACCEPTED}")
    endpoint, body, headers = payload.get("endpoint"), payload.get("body"), payload.get("headers", {})
    route = ROUTES.get(endpoint) if isinstance(endpoint, str) else None
    if route is None:
        raise ExplainError(f"endpoint must be a cached route, one of {', '.join(ROUTES)} (got {endpoint!r})")
    if not isinstance(body, dict):
        raise ExplainError('body must be the request\'s JSON object, e.g. {"model": "llama3.2", ...}')
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ExplainError("headers must be an object of header names and text values")
    named = {name.lower(): value for name, value in headers.items()}
    others = sorted(set(named) - {"authorization", "x-api-key", "x-cache-namespace"})
    if others:
        raise ExplainError(
            f"header {others[0]!r} does not change the key; only Authorization, x-api-key and X-Cache-Namespace do"
        )
    authorization = credential_of(
        named["authorization"].encode() if "authorization" in named else None,
        named["x-api-key"].encode() if "x-api-key" in named else None,
    )
    try:
        namespace = parse_namespace(named["x-cache-namespace"].encode() if "x-cache-namespace" in named else None)
    except ControlsError as error:
        raise ExplainError(str(error)) from None
    context = keys.context_for(request_model(body) or "", authorization, namespace)
    try:
        canonical = canonical_request(route.path, body, context)
        raw = json.dumps(body, ensure_ascii=False).encode()
    except (NotCacheable, ValueError, RecursionError) as error:
        raise ExplainError(f"this request is not cached by the proxy, which forwards it as it is: {error}") from None
    facts = keys.facts(route, raw, authorization, namespace)
    if facts is None:
        raise ExplainError("this request cannot be keyed, so the proxy forwards it as it is")
    _hide_credential(canonical)
    return Asked(route, facts.model, canonical, facts.key)


def _hide_credential(canonical: dict[str, Any]) -> None:
    """The credential is in the key as a hash; shown, it would say only that there was one."""
    if "credential" in canonical["context"]:
        canonical["context"]["credential"] = "(the Authorization and x-api-key headers, hashed)"


def compare(
    asked: Asked, lookup: Callable[[str], Entry | None], stored: Iterable[Entry], nearest: int = NEAREST
) -> dict[str, Any]:
    """The explanation of ``asked``: whether ``lookup`` finds its key and, if not, the ``nearest`` entries of
    ``stored`` (its model's entries) on its route that differ in the fewest fields, newest first among equals."""
    answer: dict[str, Any] = {
        "endpoint": asked.route.path,
        "model": asked.model,
        "canonical": asked.canonical,
        "key": asked.key,
    }
    found = lookup(asked.key)
    answer["cached"] = found is not None
    answer["entry"] = found.info() if found is not None else None
    answer["nearest"], answer["compared"], answer["without_request"], answer["complete"] = [], 0, 0, True
    if found is not None:
        return answer
    requested = asked.canonical["request"]
    best: list[tuple[int, float, int, dict[str, Any]]] = []
    compared = without = 0
    for entry in stored:
        if entry.route != asked.route.path:
            continue
        if compared >= MAX_COMPARED:
            answer["complete"] = False
            break
        form = _stored_form(entry)
        if form is None:
            without += 1
            continue
        compared += 1
        found_differences = differences(form, requested)
        item = {**entry.info(), "differences": [d.to_json() for d in found_differences]}
        if not found_differences:
            item["same_body"] = SAME_BODY
        rank = (-len(found_differences), entry.created, compared, item)  # a min-heap of the best so far
        if len(best) < nearest:
            heapq.heappush(best, rank)
        elif rank[:3] > best[0][:3]:
            heapq.heapreplace(best, rank)
    answer["nearest"] = [item for *_, item in sorted(best, key=lambda r: r[:3], reverse=True)]
    answer["compared"], answer["without_request"] = compared, without
    return answer


def _stored_form(entry: Entry) -> dict[str, Any] | None:
    """The canonical request of the body ``entry`` keeps, or ``None`` when it keeps none (or none readable)."""
    if not entry.request:
        return None
    try:
        return canonical_request(entry.route, json.loads(entry.request))["request"]
    except (NotCacheable, ValueError, RecursionError, KeyError):
        return None
