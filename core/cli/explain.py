"""``ollacache explain FILE.json``: ask the running proxy why a request misses, and print it readably.

The file holds ``{"endpoint": "/api/chat", "body": {...}}`` (optionally ``"headers"`` with Authorization or
X-Cache-Namespace), the same as ``POST /-/explain``; ``-`` reads it from standard input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from core.config.settings import Settings
from core.control.client import ControlClient, ControlError

EXIT_USAGE = 2
EXIT_UNREACHABLE = 1
CANONICAL_SHOWN = 400  # characters of the canonical form printed


def run_explain(settings: Settings, file: str, url: str | None, as_json: bool) -> int:
    """Explain the request in ``file`` through the proxy at ``url`` (or the running one); the exit code."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        request = json.loads(text)
    except (OSError, UnicodeDecodeError) as error:
        print(f"ollacache: cannot read {file}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"ollacache: {file} is not JSON: {error}", file=sys.stderr)
        return EXIT_USAGE
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("endpoint"), str)
        or not isinstance(request.get("body"), dict)
    ):
        print(
            f'ollacache: {file} must hold {{"endpoint": "/api/chat", "body": {{...}}}} (and optionally "headers")',
            file=sys.stderr,
        )
        return EXIT_USAGE
    headers = request.get("headers") if isinstance(request.get("headers"), dict) else None
    try:
        with ControlClient.from_settings(settings, url) as client:
            answer = client.explain(request["endpoint"], request["body"], headers)
    except ControlError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_USAGE if error.status == 400 else EXIT_UNREACHABLE
    print(json.dumps(answer, indent=2, ensure_ascii=False) if as_json else format_explanation(answer))
    return 0


def format_explanation(answer: dict[str, Any]) -> str:
    """The engine's explanation as text: the key and whether it is cached, else the nearest entries and
    what differs in each."""
    canonical = json.dumps(answer["canonical"], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if len(canonical) > CANONICAL_SHOWN:
        canonical = canonical[:CANONICAL_SHOWN] + "…"
    lines = [f"{answer['endpoint']}  {answer['model']}", f"key        {answer['key']}", f"canonical  {canonical}"]
    if answer["cached"]:
        entry = answer.get("entry") or {}
        lines.append(f"cached: a request like this is a HIT (stored {_when(entry.get('created'))})")
        return "\n".join(lines)
    compared, nearest = answer["compared"], answer["nearest"]
    where = f"{answer['model']} on {answer['endpoint']}"
    if not nearest:
        lines.append(f"not cached: no stored entry of {where} to compare with" + _uncomparable(answer))
        return "\n".join(lines)
    partly = "" if answer.get("complete", True) else " (the first ones only)"
    lines.append(
        f"not cached; the nearest of {compared} stored {_plural(compared, 'entry', 'entries')} of {where}"
        f"{partly}{_uncomparable(answer)}:"
    )
    for number, item in enumerate(nearest, 1):
        found = item["differences"]
        what = f"{len(found)} {_plural(len(found), 'field differs', 'fields differ')}" if found else "same body"
        lines.append(f"  {number}. {item['key'][:16]}  stored {_when(item.get('created'))}  {what}")
        if not found:
            lines.append(f"       {item.get('same_body', '')}")
        for difference in found:
            stored = _value(difference, "stored")
            requested = _value(difference, "requested")
            lines.append(f"       {difference['path']}: stored {stored}, requested {requested}")
    return "\n".join(lines)


def _uncomparable(answer: dict[str, Any]) -> str:
    count = answer.get("without_request", 0)
    return f" ({count} stored before entries kept their request, not compared)" if count else ""


def _value(difference: dict[str, Any], side: str) -> str:
    return json.dumps(difference[side], ensure_ascii=False) if side in difference else "(absent)"


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _when(created: Any) -> str:
    if not isinstance(created, (int, float)) or not created:
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
