"""What ``ollacache tune`` prints: a line per step while it measures, then a table with a bar per thread count.

Bars are Unicode block characters in eighths of a cell, scaled so the fastest candidate's bar is
`BAR_WIDTH` cells long; rows are in ascending thread count, so the bars read as the speed curve.
"""

from __future__ import annotations

from core.tuning.measure import Progress, TuneResult
from core.tuning.verdict import summary

BAR_WIDTH = 30  # cells of the fastest candidate's bar
EIGHTHS = " ▏▎▍▌▋▊▉"  # index k: a cell k/8 full
FULL = "█"
WINNER = "◀ best"


def bar(value: float, best: float, width: int = BAR_WIDTH) -> str:
    """``value`` as a bar of block characters, ``width`` cells for ``best``, padded to ``width`` cells."""
    eighths = round(max(value, 0.0) / best * width * 8) if best > 0 else 0
    eighths = min(eighths, width * 8)
    full, part = divmod(eighths, 8)
    text = FULL * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)


def _speed(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_table(result: TuneResult) -> str:
    """The table of a measurement: thread count, generation speed and its bar, prompt speed; the winner
    marked, then a closing line naming it (tokens per second throughout)."""
    best = result.best
    runs = len(best.run_speeds)
    rows = sorted(result.results, key=lambda row: row.num_thread)
    lines = [
        f"Generation speed with {result.model}, median of {runs} run{'s' if runs != 1 else ''}"
        " per thread count (tokens/s):",
        "",
        f"{'threads':>7}  {'tokens/s':>9}  {'':<{BAR_WIDTH}}  {'prompt':>9}",
    ]
    for row in rows:
        mark = f"  {WINNER}" if row is best else ""
        lines.append(
            f"{row.num_thread:>7}  {_speed(row.tokens_per_s):>9}  {bar(row.tokens_per_s, best.tokens_per_s)}"
            f"  {_speed(row.prompt_tokens_per_s):>9}{mark}"
        )
    lines.append("")
    lines.append(summary([(row.num_thread, row.tokens_per_s) for row in result.results]))
    return "\n".join(lines)


def format_progress(event: Progress) -> str:
    """One line for a progress event, e.g. ``[ 3/16] 6 threads, run 2/3: 14.0 tokens/s``."""
    width = len(str(event.steps))
    head = f"[{event.step:>{width}}/{event.steps}] {event.num_thread} thread{'s' if event.num_thread != 1 else ''}, "
    which = "warm-up" if event.run == 0 else f"run {event.run}/{event.runs}"
    if event.tokens_per_s is None:
        note = " (Ollama loads the model with this thread count)" if event.run == 0 else ""
        return f"{head}{which}{note}..."
    return f"{head}{which}: {_speed(event.tokens_per_s)} tokens/s"
