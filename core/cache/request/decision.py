"""The cache decision for one request on a cached route (pure: no I/O, no clock).

The facts are the request's key and stream mode (or that it could not be keyed), whether caching is on, the
entry found, the client's ``Cache-Control`` and whether an identical request is in flight; the outcome is
hit, miss, refresh, bypass, a refusal, or following the request in flight. :func:`core.cache.request.plan.plan` wraps
it into what the proxy carries out. The sampling policy (:class:`Policy`) says which requests
the cache takes, and how many answers a sampled one keeps; :func:`choose_slot` picks which of them answers.

An entry serves both stream modes: found in the other mode, it is a hit answered by conversion
(:mod:`core.cache.request.modes`) whenever the conversion is faithful; an OpenAI stream recorded without
``usage`` cannot give a whole answer, nor a stream to a request that asks for usage, so for those it is a
miss, and the answer stored in its place then serves every mode (the proxy records OpenAI streams with their
usage: :mod:`core.cache.request.usage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from random import Random
from typing import Protocol

from core.cache.request.controls import NONE, Controls
from core.cache.request.merge import can_merge
from core.cache.request.modes import can_convert


class Outcome(Enum):
    """What the proxy does, named as the ``X-Cache`` header tells it."""

    HIT = "HIT"  # answer from the entry, without calling the upstream
    MISS = "MISS"  # forward, record the answer, store it if it turns out complete
    BYPASS = "BYPASS"  # forward untouched, store nothing
    REFRESH = "REFRESH"  # forward without looking up, record the answer and store it in place of the old one
    UNCACHED = "UNCACHED"  # not stored, and the client asked for a stored answer only: 504, upstream untouched
    SHARED = "SHARED"  # the same request is being answered upstream right now: follow that answer
    PARTIAL = "PARTIAL"  # a batch of embeddings with some inputs stored: the upstream is asked for the others

    @property
    def header(self) -> bytes:
        return b"MISS" if self is Outcome.UNCACHED else self.value.encode()


@dataclass(frozen=True, slots=True)
class Request:
    """What the decision needs of a keyed request: ``sampled`` when its answer is drawn at random (see
    :func:`core.cache.request.keys.is_sampled`), ``embeds`` for an embedding, ``usage`` when an OpenAI request asks
    ``stream_options.include_usage`` (its stream carries a usage chunk), and ``legacy_key`` the key such a
    request had while the option was part of keys (see :func:`core.cache.request.keys.legacy_key`)."""

    key: str
    model: str
    streamed: bool
    sampled: bool = False
    embeds: bool = False
    usage: bool = False
    legacy_key: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Which requests the cache answers and records (the ``cache.sampling`` setting), and how many distinct
    answers a sampled request keeps (``cache.bucket``).

    ``all`` caches everything; ``deterministic`` only embeddings and generations that cannot differ
    (temperature 0 or a fixed seed); ``off`` only embeddings. What it leaves out passes through.
    """

    sampling: str = "all"
    bucket: int = 1

    @property
    def special(self) -> bool:
        """Whether this policy is other than the default (everything cached, one answer per key)."""
        return self.bucket != 1 or self.sampling != "all"

    def caches(self, request: Request) -> bool:
        """Whether ``request`` may be answered from the cache and recorded for it."""
        return request.embeds or self.sampling == "all" or (self.sampling == "deterministic" and not request.sampled)

    def slots(self, request: Request) -> int:
        """How many answers ``request``'s key keeps: ``bucket`` for a sampled request the policy caches, 1 for
        any other it caches, 0 for one it leaves out (nothing is read for it)."""
        if not self.caches(request):
            return 0
        return self.bucket if request.sampled else 1


class Stored(Protocol):
    """What the decision needs of an entry found for the key."""

    @property
    def streamed(self) -> bool: ...

    @property
    def created(self) -> float: ...

    @property
    def route(self) -> str: ...

    @property
    def chunks(self) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str
    converts: bool = False  # a hit answered from an entry recorded in the other stream mode

    @property
    def records(self) -> bool:
        """Whether the upstream's answer is recorded for the store."""
        return self.outcome in (Outcome.MISS, Outcome.REFRESH)


HIT = Decision(Outcome.HIT, "a stored answer in the same mode")
CONVERTED = Decision(Outcome.HIT, "a stored answer in the other stream mode, converted to this one", converts=True)
MISS = Decision(Outcome.MISS, "nothing stored for this key")
MISS_OTHER_MODE = Decision(
    Outcome.MISS, "the stored stream cannot give a whole answer (an OpenAI stream without usage); it is replaced"
)
MISS_NO_USAGE = Decision(
    Outcome.MISS, "the stored stream has no usage, which this request asks for (stream_options); it is replaced"
)
NOT_KEYED = Decision(Outcome.BYPASS, "the request cannot be keyed (not a JSON object with a model)")
PAUSED = Decision(Outcome.BYPASS, "caching is paused")
NO_STORE = Decision(Outcome.BYPASS, "the client asked for no-store")
REFRESH = Decision(Outcome.REFRESH, "the client asked for no-cache: a fresh answer replaces the stored one")
TOO_OLD = Decision(Outcome.MISS, "the stored answer is older than the client's max-age; it is replaced")
UNCACHED = Decision(Outcome.UNCACHED, "nothing stored that may answer, and the client asked only-if-cached")
SHARED = Decision(Outcome.SHARED, "the same request is being answered upstream: its answer is shared")
SAMPLED = Decision(
    Outcome.BYPASS,
    "cache.sampling is deterministic and this request is sampled (set temperature 0 or a seed to cache it)",
)
GENERATION_OFF = Decision(Outcome.BYPASS, "cache.sampling is off: only embeddings are cached")
UNCACHED_BY_POLICY = Decision(
    Outcome.UNCACHED, "cache.sampling leaves this request out of the cache, and the client asked only-if-cached"
)
ALL = Policy()


def decide(
    request: Request | None,
    found: Stored | None,
    *,
    caching: bool = True,
    controls: Controls = NONE,
    now: float = 0.0,
    flying: bool = False,
    policy: Policy = ALL,
) -> Decision:
    """Hit, miss-and-record, refresh, bypass or a refusal for ``request`` (``None``: it could not be keyed).

    ``found`` is the live entry stored under the request's key, if any (expired entries are never
    found); ``caching`` is off while the user has paused the cache; ``controls`` are the client's
    ``Cache-Control`` directives and ``now`` the wall clock they are judged by (``max-age``); ``flying``
    says the same key is being answered upstream right now; ``policy`` says which requests the cache takes
    at all (a request it leaves out passes through). Whenever no stored answer may serve, a request in
    flight does (its answer is as fresh as any the upstream would give now), ``only-if-cached`` included,
    since following it calls nothing.
    """
    if request is None:
        return NOT_KEYED
    if not caching:
        return PAUSED
    if controls.no_store:
        return NO_STORE
    if policy.sampling != "all" and not policy.caches(request):
        if controls.only_if_cached:
            return UNCACHED_BY_POLICY
        return GENERATION_OFF if policy.sampling == "off" else SAMPLED
    if controls.no_cache:
        return _upstream(REFRESH, controls, flying)
    if found is not None and controls.max_age_s is not None and now - found.created > controls.max_age_s:
        return _upstream(TOO_OLD, controls, flying)
    if found is None:
        return _upstream(MISS, controls, flying)
    if found.streamed != request.streamed:
        if can_convert(found.route, found.streamed, found.chunks):
            return CONVERTED
        return _upstream(MISS_OTHER_MODE, controls, flying)
    if request.usage and found.streamed and not can_merge(found.route, found.chunks):
        return _upstream(MISS_NO_USAGE, controls, flying)
    return HIT


def _upstream(decision: Decision, controls: Controls, flying: bool) -> Decision:
    """No stored answer may serve: share the one in flight, refuse (only-if-cached), or ask the upstream."""
    if flying:
        return SHARED
    return UNCACHED if controls.only_if_cached else decision


def choose_slot(found: Sequence[Stored | None], bucket: int, rng: Random) -> int:
    """Which of a key's ``bucket`` slots answers or records a sampled request.

    ``found`` holds the entries of the slots read, in order, up to the first empty one (``None``). While
    the bucket fills, the first empty slot is chosen: the request is a miss that records a new answer
    there. Once every slot holds an answer, one is chosen at random by ``rng``, as it is when nothing was
    read (a refresh replaces one of the answers).
    """
    for index, entry in enumerate(found):
        if entry is None:
            return index
    if found and len(found) < bucket:
        return len(found)
    return rng.randrange(bucket)
