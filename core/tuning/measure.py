"""Tuning by measurement: which thread count generates fastest on this machine, measured through Ollama.

`candidates` picks the thread counts worth trying from the detected hardware (pure). `measure` sends
the same short deterministic generation (`core.tuning.generation`) straight to Ollama through the official
``ollama`` client — the upstream, never through the cache — once as a warm-up and then ``runs`` times per
candidate, and reads the speeds from Ollama's own counters (``eval_count`` / ``eval_duration``, ``prompt_eval_count`` /
``prompt_eval_duration``), so model loading and HTTP overhead are left out. Changing ``num_thread``
makes Ollama reload the model; the warm-up absorbs that, and candidates are measured one after the
other rather than interleaved so each costs one reload.

How the figures are made:

- generation speed (``tokens_per_s``): the median of the measured runs' speeds, so one run slowed by
  something else on the machine (an indexer, a browser tab) does not move the result;
- prompt speed (``prompt_tokens_per_s``): all prompt tokens over all prompt time of the candidate, warm-up
  included. Ollama reuses the prompt it evaluated last time, so after the warm-up a run evaluates one token
  or none; weighting by tokens lets the warm-up's full evaluation decide. None when Ollama reported none;
- the winner: the highest generation speed; a tie, or speeds all within noise, goes to fewer threads (the same
  speed for less CPU).

`measure` is a coroutine for the control API (progress events as they happen); `measure_sync` runs it
for the command line. Bad input raises `TuneError` before anything is measured, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import ollama

from core.hardware.detect import Hardware
from core.tuning.generation import OllamaClient, TuneError, check_url, new_client, pick_model
from core.tuning.verdict import best_of

__all__ = [
    "CandidateResult",
    "Progress",
    "TuneError",
    "TuneResult",
    "candidates",
    "measure",
    "measure_sync",
    "pick_model",
]
NS_PER_S = 1e9


@dataclass(frozen=True)
class Progress:
    """One step of a measurement, reported as it happens.

    Attributes:
        event: ``"run_did_start"`` (a request was sent) or ``"run_did_finish"`` (its answer arrived).
        num_thread: the candidate being measured.
        run: 0 for the warm-up, then 1 to ``runs`` for the measured runs.
        runs: measured runs per candidate.
        step: this request's number, 1 to ``steps``, over the whole measurement.
        steps: requests in the whole measurement: candidates x (runs + 1).
        tokens_per_s: the run's generation speed in tokens per second; None until it finished.
    """

    event: str
    num_thread: int
    run: int
    runs: int
    step: int
    steps: int
    tokens_per_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON-ready values (for ``/-/events``)."""
        return asdict(self)


@dataclass(frozen=True)
class CandidateResult:
    """The measured speed of one thread count.

    Attributes:
        num_thread: the thread count.
        tokens_per_s: generation speed, tokens per second (median of the measured runs).
        prompt_tokens_per_s: prompt evaluation speed, tokens per second, or None (see the module doc).
        run_speeds: each measured run's generation speed, tokens per second, in order.
        eval_count: tokens generated over the measured runs.
    """

    num_thread: int
    tokens_per_s: float
    prompt_tokens_per_s: float | None
    run_speeds: tuple[float, ...]
    eval_count: int

    def to_json(self) -> dict[str, Any]:
        """One row of ``results`` in `TuneResult.to_json`; speeds rounded to 0.01 tokens per second."""
        return {
            "num_thread": self.num_thread,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "prompt_tokens_per_s": None if self.prompt_tokens_per_s is None else round(self.prompt_tokens_per_s, 2),
            "runs": len(self.run_speeds),
            "run_tokens_per_s": [round(s, 2) for s in self.run_speeds],
            "eval_count": self.eval_count,
        }


@dataclass(frozen=True)
class TuneResult:
    """A whole measurement: the model and each candidate's result (at least one), in the order measured."""

    model: str
    results: tuple[CandidateResult, ...]

    @property
    def best(self) -> CandidateResult:
        """The fastest candidate; a tie, or speeds all within noise (:mod:`core.tuning.verdict`), goes to fewer
        threads: the same speed for less of the processor."""
        count = best_of([(result.num_thread, result.tokens_per_s) for result in self.results])
        return next(result for result in self.results if result.num_thread == count)

    def to_json(self) -> dict[str, Any]:
        """The document of ``ollacache tune --json``: ``{"model", "results", "best"}``."""
        best = self.best
        return {
            "model": self.model,
            "results": [result.to_json() for result in self.results],
            "best": {"num_thread": best.num_thread, "tokens_per_s": round(best.tokens_per_s, 2)},
        }


def candidates(hw: Hardware) -> list[int]:
    """Thread counts worth measuring on ``hw``, the recommended one (the performance cores) first.

    In order: the performance cores, all physical cores, all logical CPUs, half the performance cores;
    each at least 1, capped by a cgroup CPU quota (rounded down), counted only over the CPUs an affinity
    mask allows, and without repeats. When the mask allows no performance core, the physical cores it
    allows stand in for them, as in `core.tuning.recommend`.
    """
    cores = hw.cpu.cores
    limit = hw.cpu_limit
    logical = hw.logical_cpus
    if limit is not None and limit.allowed_cpus is not None:
        allowed = set(limit.allowed_cpus)
        cores = tuple(core for core in cores if allowed.intersection(core.cpus))
        logical = sum(len(allowed.intersection(core.cpus)) for core in cores)
    performance = sum(1 for core in cores if not core.efficiency) or len(cores)
    cap = math.inf
    if limit is not None and limit.quota_cpus is not None:
        cap = max(math.floor(limit.quota_cpus), 1)
    out: list[int] = []
    for count in (performance, len(cores), logical, performance // 2):
        count = int(max(min(count, cap), 1))
        if count not in out:
            out.append(count)
    return out


async def _measure_one(
    api: OllamaClient,
    model: str,
    num_thread: int,
    runs: int,
    first_step: int,
    steps: int,
    progress: Callable[[Progress], None],
) -> CandidateResult:
    speeds: list[float] = []
    generated = prompt_tokens = prompt_ns = 0
    for run in range(runs + 1):
        step = first_step + run
        progress(Progress("run_did_start", num_thread, run, runs, step, steps))
        stats = await api.generate(model, num_thread)  # eval_count and eval_duration are at least 1
        speed = (stats.eval_count or 0) * NS_PER_S / (stats.eval_duration or 1)
        prompt_tokens += stats.prompt_eval_count or 0  # Ollama omits it when 0
        prompt_ns += stats.prompt_eval_duration or 0
        if run:
            speeds.append(speed)
            generated += stats.eval_count or 0
        progress(Progress("run_did_finish", num_thread, run, runs, step, steps, speed))
    prompt_speed = prompt_tokens * NS_PER_S / prompt_ns if prompt_tokens and prompt_ns else None
    return CandidateResult(num_thread, statistics.median(speeds), prompt_speed, tuple(speeds), generated)


async def measure(
    upstream: str,
    model: str | None,
    candidates: Sequence[int],
    runs: int,
    *,
    progress: Callable[[Progress], None] | None = None,
    client: ollama.AsyncClient | None = None,
) -> TuneResult:
    """Measure each candidate thread count on Ollama at ``upstream``: 1 warm-up + ``runs`` measured runs.

    Args:
        upstream: Ollama's base URL, e.g. ``http://127.0.0.1:11434`` (not the proxy's).
        model: the model to measure with; None picks the first installed model that can generate text
            (`core.tuning.generation.can_generate` over ``GET /api/tags``, most recently modified first,
            with each one's capabilities from ``POST /api/show``).
        candidates: thread counts (at least 1 each) in the order to measure them; repeats are measured once.
        runs: measured runs per candidate, at least 1.
        progress: called with a `Progress` before and after every request (exceptions it raises propagate).
        client: the official client to use, made for ``upstream``; default a new one
            (`core.tuning.generation.new_client`: it connects within ``CONNECT_TIMEOUT_S`` and answers within
            ``REQUEST_TIMEOUT_S`` seconds), closed afterwards.

    Raises:
        TuneError: ``runs`` below 1, no candidates or one below 1, an empty model name, an upstream that is
            not an http(s) URL, Ollama unreachable (the message names the address), the model not installed
            (it lists the installed ones), no model to pick, Ollama's refusal, or an answer without
            timings. Checks on the arguments come before any request.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise TuneError(f"runs must be a whole number of at least 1, not {runs!r}")
    counts = list(dict.fromkeys(candidates))
    if not counts:
        raise TuneError("no thread counts to measure")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise TuneError(f"thread counts must be whole numbers of at least 1, not {counts}")
    if model is not None and not model.strip():
        raise TuneError("the model name is empty")
    check_url(upstream)
    async with new_client(upstream) if client is None else nullcontext(client) as official:
        api = OllamaClient(official, upstream)
        if model is None:
            model = await api.pick()
            if model is None:
                raise TuneError(
                    f"Ollama at {api.shown} has no model that can generate text;"
                    " pull one first, e.g. ollama pull llama3.2"
                )
        report = progress or (lambda event: None)
        steps = len(counts) * (runs + 1)
        results = [
            await _measure_one(api, model, n, runs, 1 + i * (runs + 1), steps, report) for i, n in enumerate(counts)
        ]
    return TuneResult(model, tuple(results))


def measure_sync(
    upstream: str,
    model: str | None,
    candidates: Sequence[int],
    runs: int,
    *,
    progress: Callable[[Progress], None] | None = None,
) -> TuneResult:
    """`measure` for synchronous callers (the command line): runs it in a new event loop.

    Raises:
        TuneError: as `measure`.
    """
    return asyncio.run(measure(upstream, model, candidates, runs, progress=progress))
