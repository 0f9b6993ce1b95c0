"""``ollacache tune``: measure on the command line, print a table (or JSON), and optionally apply."""

from __future__ import annotations

import json
import sys

import httpx

from core.control import running
from core.control import token as tokens
from core.config.file import write_setting
from core.hardware.detect import detect
from core.config.settings import Settings
from core.tuning.measure import TuneError, candidates, measure_sync
from core.cli.tune_text import format_progress, format_table

EXIT_FAILED = 1


def resolve_upstream(settings: Settings, given: str | None) -> str:
    """Ollama's own address: never an Ollacache proxy, whose cache would answer every run after the first."""
    upstream = (given or settings["proxy.upstream"]).rstrip("/")
    engine = running.engine_url(settings.config_dir, settings.url)
    for address in (upstream, engine):
        try:
            health = httpx.get(f"{address}/-/health", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            continue
        behind = health.get("upstream", {}).get("url") if isinstance(health, dict) else None
        if address == upstream and behind:
            print(f"ollacache: {upstream} is an Ollacache proxy; measuring its upstream {behind} instead",
                  file=sys.stderr)
            return str(behind)
        if address == engine and behind and given is None:
            return str(behind)
    return upstream


def run_tune(settings: Settings, *, model: str | None, upstream: str | None, runs: int, apply: bool,
             as_json: bool) -> int:
    target = resolve_upstream(settings, upstream)
    counts = candidates(detect())
    if not as_json:
        print(f"Measuring thread counts {', '.join(map(str, counts))} against Ollama at {target}"
              f" ({runs} runs each after a warm-up)", file=sys.stderr)
    try:
        result = measure_sync(target, model, counts, runs,
                              progress=lambda event: print(format_progress(event), file=sys.stderr))
    except TuneError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result.to_json()) if as_json else format_table(result))
    return _apply(settings, result.best.num_thread) if apply else 0


def _apply(settings: Settings, num_thread: int) -> int:
    try:
        path = write_setting(settings.config_dir, "tuning.num_thread", num_thread)
    except (OSError, ValueError) as error:
        print(f"ollacache: could not keep tuning.num_thread = {num_thread}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"kept tuning.num_thread = {num_thread} in {path}", file=sys.stderr)
    token = tokens.read(settings.config_dir)
    engine = running.engine_url(settings.config_dir, settings.url)
    try:
        answer = httpx.post(f"{engine}/-/tuning", json={"num_thread": num_thread}, timeout=60.0,
                            headers={"authorization": f"Bearer {token}"} if token else {})
        reply = answer.json()
    except (httpx.HTTPError, ValueError):
        print("Ollama: no proxy running; the next `ollacache serve` starts Ollama with it", file=sys.stderr)
        return 0
    if answer.status_code != 200:
        print(f"ollacache: the running proxy refused the new thread count: {reply.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Ollama: {reply.get('ollama_restart')}", file=sys.stderr)
    return 0
