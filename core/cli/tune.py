"""``ollacache tune``: measure on the command line, print a table (or JSON), and optionally apply."""

from __future__ import annotations

import json
import sys

from core.cli.tune_text import format_progress, format_table
from core.config.file import write_setting
from core.config.parsing import redact
from core.config.settings import Settings
from core.control.client import ControlClient, ControlError, upstream_of
from core.hardware.detect import detect
from core.tuning.measure import TuneError, candidates, measure_sync

EXIT_FAILED = 1


def resolve_upstream(settings: Settings, given: str | None) -> str:
    """Ollama's own address: never an Ollacache proxy, whose cache would answer every run after the first."""
    upstream = (given or settings["proxy.upstream"]).rstrip("/")
    with ControlClient(upstream, None) as client:
        behind = _upstream_behind(client, settings)
    if behind is not None:
        print(
            f"ollacache: {redact(upstream)} is an Ollacache proxy; measuring its upstream {redact(behind)} instead",
            file=sys.stderr,
        )
        return behind
    if given is None:
        with ControlClient.from_settings(settings) as engine:
            behind = _upstream_behind(engine, settings)
        if behind is not None:
            return behind
    return upstream


def _upstream_behind(client: ControlClient, settings: Settings) -> str | None:
    """The Ollama the engine at ``client.url`` forwards to, or None when no engine answers there."""
    try:
        return upstream_of(client.health(), settings["proxy.upstream"])
    except ControlError:
        return None


def run_tune(
    settings: Settings, *, model: str | None, upstream: str | None, runs: int, apply: bool, as_json: bool
) -> int:
    target = resolve_upstream(settings, upstream)
    counts = candidates(detect())
    if not as_json:
        print(
            f"Measuring thread counts {', '.join(map(str, counts))} against Ollama at {target}"
            f" ({runs} runs each after a warm-up)",
            file=sys.stderr,
        )
    try:
        result = measure_sync(
            target, model, counts, runs, progress=lambda event: print(format_progress(event), file=sys.stderr)
        )
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
    try:
        with ControlClient.from_settings(settings) as engine:
            reply = engine.set_threads(num_thread)
    except ControlError as error:
        if error.unreachable:
            print("Ollama: no proxy running; the next `ollacache serve` starts Ollama with it", file=sys.stderr)
            return 0
        print(f"ollacache: the running proxy did not take the new thread count: {error}", file=sys.stderr)
        return EXIT_FAILED
    if "note" in reply:
        print(f"ollacache: {reply['note']}", file=sys.stderr)
    print(f"Ollama: {reply.get('ollama_restart')}", file=sys.stderr)
    return 0
