"""The plan for one request to the proxy port (pure: no I/O, no clock): what the proxy does with it.

The proxy gathers the facts of a request (its route, whether it could be keyed and how, the client's
``Cache-Control`` and whether it parsed, the entry found, an identical request in flight, whether caching is
paused, offline replay, the settings in force) and :func:`plan` turns them into a :class:`Plan`: answer from the
entry, follow the request in flight, forward and record, forward untouched, or refuse with an error in the
route's own format. :mod:`core.http.proxy` carries the plan out and keeps account of it at one exit.

The cache decision itself (hit, miss, refresh...) is :func:`core.cache.request.decision.decide`'s; the plan adds what
surrounds it: offline replay refuses whatever is not a hit, ``only-if-cached`` without a stored answer is a 504,
the tuned thread count is added only to what Ollama itself will run, and an answer's lifetime is the client's
``ttl`` or the setting's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from core.cache.request.controls import NONE, Controls
from core.cache.request.decision import ALL, CONVERTED, HIT, SHARED, Decision, Outcome, Policy, Request, Stored, decide

OFFLINE_MISS = (
    "ollacache: the proxy is offline (proxy.offline) and this request is not cached; "
    "only cached answers are served, the upstream is never called"
)
OFFLINE_PASS_THROUGH = (
    "ollacache: the proxy is offline (proxy.offline): only cached answers to cached routes "
    "are served, and this request would go to the upstream, which is never called"
)


class Act(Enum):
    """What the proxy does with a request."""

    ANSWER = "answer"  # send the entry found, converted to the request's stream mode when needed
    FOLLOW = "follow"  # follow the identical request in flight
    RECORD = "record"  # forward, record the answer, store it once it is complete
    FORWARD = "forward"  # forward untouched, nothing recorded
    REFUSE = "refuse"  # answer with an error in the route's format; the upstream is never called


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one request, and what to say of it.

    ``outcome`` is its ``X-Cache`` header (``None`` on a path that is not a cached route); ``status`` and
    ``message`` are a refusal's; ``threads`` says the tuned ``num_thread`` goes into the forwarded body;
    ``ttl_s`` is the lifetime of the entry a recorded answer makes (0: forever); ``refresh_models`` says
    Ollama's model list is read again before a successful answer ends (``pull``, ``delete``...).
    """

    act: Act
    outcome: Outcome | None
    reason: str
    status: int = 200
    message: str = ""
    threads: bool = False
    ttl_s: float = 0.0
    refresh_models: bool = False


def plan(
    request: Request | None,
    found: Stored | None = None,
    *,
    api: str = "ollama",
    controls: Controls = NONE,
    controls_error: str | None = None,
    now: float = 0.0,
    flying: bool = False,
    caching: bool = True,
    offline: bool = False,
    policy: Policy = ALL,
    inject: bool = False,
    ttl_s: float = 0.0,
) -> Plan:
    """The plan for a request on a cached route.

    ``request`` is ``None`` when it could not be keyed; ``found`` the live entry under its key; ``api`` the
    route's wire format (``ollama`` or ``openai``); ``controls`` the client's ``Cache-Control``, or
    ``controls_error`` why it did not parse; ``now`` the wall clock (``max-age``); ``flying`` that an identical
    request is answered upstream right now and can be followed; ``caching`` off while paused; ``offline``
    serves hits only; ``policy`` the sampling policy; ``inject`` that the tuned thread count is added to
    Ollama's requests; ``ttl_s`` the lifetime setting (the client's ``ttl`` wins).
    """
    if controls_error is not None:
        return Plan(Act.REFUSE, None, "the request's Cache-Control could not be read", 400, controls_error)
    decision = decide(request, found, caching=caching, controls=controls, now=now, flying=flying, policy=policy)
    # the tuned threads go into what Ollama itself runs, whether recorded or not (pausing must not change it)
    threads = inject and api == "ollama" and request is not None
    return _planned(decision, controls, offline, threads, ttl_s)


def plan_passing(*, offline: bool = False, changes_models: bool = False) -> Plan:
    """The plan for any other path or method: relayed untouched, refused while offline."""
    if offline:
        return REFUSE_OFFLINE_PASS_THROUGH
    return FORWARD_CHANGING_MODELS if changes_models else FORWARD_PASSING


def _planned(decision: Decision, controls: Controls, offline: bool, threads: bool, ttl_s: float) -> Plan:
    outcome = decision.outcome
    if outcome is Outcome.HIT:
        return ANSWER_CONVERTED if decision.converts else ANSWER
    if offline:
        return Plan(Act.REFUSE, Outcome.MISS, "the proxy is offline and this is not a hit", 504, OFFLINE_MISS)
    if outcome is Outcome.SHARED:
        return FOLLOW
    if outcome is Outcome.UNCACHED:
        message = f"ollacache: not in the cache, and the request asked only-if-cached ({decision.reason})"
        return Plan(Act.REFUSE, outcome, decision.reason, 504, message)
    if decision.records:
        return Plan(
            Act.RECORD, outcome, decision.reason, threads=threads, ttl_s=controls.ttl_s if controls.ttl_s else ttl_s
        )
    return Plan(Act.FORWARD, outcome, decision.reason, threads=threads)


ANSWER = Plan(Act.ANSWER, Outcome.HIT, HIT.reason)
ANSWER_CONVERTED = Plan(Act.ANSWER, Outcome.HIT, CONVERTED.reason)
FOLLOW = Plan(Act.FOLLOW, Outcome.SHARED, SHARED.reason)
FORWARD_PASSING = Plan(Act.FORWARD, None, "not a cached route")
FORWARD_CHANGING_MODELS = Plan(Act.FORWARD, None, "changes the installed models", refresh_models=True)
REFUSE_OFFLINE_PASS_THROUGH = Plan(Act.REFUSE, None, "the proxy is offline", 504, OFFLINE_PASS_THROUGH)
