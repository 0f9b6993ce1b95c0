"""``ollacache warm FILE.jsonl``: check the whole file, start the warm-up on the running proxy, follow it with a
progress bar (plain lines when stdout is not a terminal), then print the summary and each failure.

The exit code is 0 when every request was sent or already cached, 1 when any failed or no proxy runs,
2 when the file is bad (nothing is sent then).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from core.config.settings import Settings
from core.control.client import ControlClient, ControlError
from core.control.warm import MAX_CONCURRENCY, WarmError, WarmFile, WarmStatus, counts_text, read_file, summary_text

EXIT_FAILED = 1
EXIT_BAD_FILE = 2
POLL_S = 0.2  # how often the status is read while the warm-up runs
PLAIN_EVERY_S = 1.0  # at most one plain progress line this often


def run_warm(settings: Settings, path: Path, *, url: str | None, concurrency: int) -> int:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        print(f"ollacache: --concurrency must be from 1 to {MAX_CONCURRENCY}", file=sys.stderr)
        return EXIT_BAD_FILE
    try:
        warm_file = read_file(path)
    except WarmError as error:
        print(f"ollacache: {error}; nothing was sent", file=sys.stderr)
        return EXIT_BAD_FILE
    try:
        with ControlClient.from_settings(settings, url) as client:
            status = client.warm_start(warm_file.items, concurrency)
            try:
                status = _follow(client, status)
            except KeyboardInterrupt:
                print(
                    f"\nollacache: stopped following; the warm-up goes on in the proxy at {client.url} "
                    "(GET /-/warm tells its progress)",
                    file=sys.stderr,
                )
                return 130
    except ControlError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(summary_text(status))
    for failure in status.get("failures", []):
        print(
            f"  line {warm_file.line_of(failure['index'])}: {failure['endpoint']} "
            f"{failure['model'] or '(no model)'}: {failure['error']}"
        )
    shown = len(status.get("failures", []))
    if status.get("failed", 0) > shown:
        print(f"  ... and {status['failed'] - shown:,} more failures")
    return EXIT_FAILED if status.get("failed", 0) else 0


def _follow(client: ControlClient, status: WarmStatus) -> WarmStatus:
    """Read the status until the warm-up is done, showing its progress; the final status."""
    if sys.stdout.isatty():
        return _follow_bar(client, status)
    last_line, shown = "", -1.0
    while True:
        line = f"warm: {_done(status):,}/{status.get('total', 0):,} ({counts_text(status)})"
        now = time.monotonic()
        if line != last_line and (now - shown >= PLAIN_EVERY_S or status["state"] == "done"):
            print(line, flush=True)
            last_line, shown = line, now
        if status["state"] != "running":
            return status
        time.sleep(POLL_S)
        status = client.warm_status()


def _follow_bar(client: ControlClient, status: WarmStatus) -> WarmStatus:
    columns = (
        TextColumn("warming"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(), transient=False) as progress:
        task: TaskID = progress.add_task("warm", total=status.get("total", 0), counts=counts_text(status))
        while True:
            progress.update(task, completed=_done(status), counts=counts_text(status))
            if status["state"] != "running":
                return status
            time.sleep(POLL_S)
            status = client.warm_status()


def _done(status: WarmStatus) -> int:
    return status.get("sent", 0) + status.get("cached", 0) + status.get("failed", 0)


__all__ = ["WarmFile", "run_warm"]
