"""Which chart library for the dashboard: redraw time and RSS of one live chart, per candidate, same run.

Each candidate draws one chart of 3 series x 3,600 points (an hour at 1 Hz), offscreen, 640x240 pixels;
every "tick" appends one sample to each series and renders the widget (``grab()``), as the dashboard does
once a second. Each candidate runs in its own subprocess so its RSS (after QApplication and QtWidgets,
before the library and the chart) is not mixed with the others'.

    .venv/bin/python bench/chart_draw.py [--ticks 60]

Candidates: plain QPainter (desktop/dashboard/charts.py), QtCharts (PySide6.QtCharts, deprecated since
Qt 6.10) and pyqtgraph. pyqtgraph is not a dependency: put it on PYTHONPATH for the measurement, e.g.
``pip install --target /tmp/pqg-site pyqtgraph`` then ``PYQTGRAPH_PATH=/tmp/pqg-site``; without it, that
row says "not installed".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POINTS = 3600
SERIES = 3
WIDTH, HEIGHT = 640, 240


def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def sample(i: int, s: int) -> float:
    return 50 + 40 * math.sin(i / 60 + s)


def build_qpainter(t0: float) -> tuple[Any, Any]:
    from desktop.dashboard.charts import Series, TimeChart

    chart = TimeChart("CPU", "CPU %", [Series(f"s{s}", 200 + 60 * s) for s in range(SERIES)], y_max=100)
    chart.set_window(3600)
    for i in range(POINTS):
        chart.append(t0 + i, [sample(i, s) for s in range(SERIES)])

    def tick(i: int) -> None:
        chart.append(t0 + i, [sample(i, s) for s in range(SERIES)])

    return chart, tick


def build_qtcharts(t0: float) -> tuple[Any, Any]:
    from collections import deque

    from PySide6.QtCharts import QChart, QChartView, QDateTimeAxis, QLineSeries, QValueAxis
    from PySide6.QtCore import QDateTime, QPointF, Qt
    from PySide6.QtGui import QPainter

    chart = QChart()
    x_axis, y_axis = QDateTimeAxis(), QValueAxis()
    x_axis.setFormat("hh:mm")
    x_axis.setTitleText("time")
    y_axis.setRange(0, 100)
    y_axis.setTitleText("CPU %")
    chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
    chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
    lines, data = [], []
    for s in range(SERIES):
        line = QLineSeries()
        chart.addSeries(line)
        line.attachAxis(x_axis)
        line.attachAxis(y_axis)
        lines.append(line)
        data.append(deque((QPointF((t0 + i) * 1000, sample(i, s)) for i in range(POINTS)), maxlen=POINTS))
    view = QChartView(chart)
    view.setRenderHint(QPainter.RenderHint.Antialiasing)

    def tick(i: int) -> None:
        for s, line in enumerate(lines):
            data[s].append(QPointF((t0 + i) * 1000, sample(i, s)))
            line.replace(list(data[s]))
        x_axis.setRange(
            QDateTime.fromMSecsSinceEpoch(int((t0 + i - POINTS) * 1000)),
            QDateTime.fromMSecsSinceEpoch(int((t0 + i) * 1000)),
        )

    tick(POINTS)
    return view, tick


def build_pyqtgraph(t0: float) -> tuple[Any, Any]:
    import numpy as np
    import pyqtgraph as pg

    plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
    plot.setLabel("left", "CPU %")
    plot.setLabel("bottom", "time")
    plot.setYRange(0, 100)
    xs = np.arange(POINTS, dtype=float) + t0
    ys = [np.array([sample(i, s) for i in range(POINTS)]) for s in range(SERIES)]
    curves = [plot.plot(xs, ys[s], pen=pg.mkPen(width=2)) for s in range(SERIES)]

    def tick(i: int) -> None:
        nonlocal xs
        xs = np.roll(xs, -1)
        xs[-1] = t0 + i
        for s, curve in enumerate(curves):
            ys[s] = np.roll(ys[s], -1)
            ys[s][-1] = sample(i, s)
            curve.setData(xs, ys[s])

    return plot, tick


BUILDERS = {"qpainter": build_qpainter, "qtcharts": build_qtcharts, "pyqtgraph": build_pyqtgraph}


def measure(name: str, ticks: int) -> dict[str, Any]:
    """In this process: RSS before and after the library and the chart, and the time of each tick + render."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    before = rss()
    try:
        widget, tick = BUILDERS[name](time.time() - POINTS)
    except ImportError as error:
        return {"name": name, "error": f"not installed ({error.name})"}
    widget.resize(WIDTH, HEIGHT)
    widget.grab()  # the first paint builds caches: not what a 1 Hz refresh pays
    times = []
    for i in range(ticks):
        started = time.perf_counter()
        tick(POINTS + 1 + i)
        widget.grab()
        times.append((time.perf_counter() - started) * 1000)
    app.processEvents()
    return {
        "name": name,
        "median_ms": statistics.median(times),
        "max_ms": max(times),
        "rss_added_mib": (rss() - before) / 2**20,
    }


def _fatal(stderr: str) -> str:
    fatal = [line for line in stderr.splitlines() if "Fatal" in line or "Segmentation" in line]
    return fatal[0].strip() if fatal else "no message"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--one", choices=sorted(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.ticks)), flush=True)
        return 0
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYQTGRAPH_PATH", "")) if p),
    }
    print(f"one chart, {SERIES} series x {POINTS:,} points, {WIDTH}x{HEIGHT} offscreen, {args.ticks} redraws")
    print(f"{'candidate':<10} {'median ms':>10} {'max ms':>8} {'RSS added':>10}")
    for name in BUILDERS:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, "--ticks", str(args.ticks)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = out.stdout.strip().splitlines()
        if not lines:
            print(f"{name:<10} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(lines[-1])
        # a crash after the measurement (at interpreter exit) is part of the verdict: say so
        exit_note = f"  (then exited with {out.returncode}: {_fatal(out.stderr)})" if out.returncode else ""
        if "error" in row:
            print(f"{name:<10} {row['error']}")
        else:
            print(
                f"{name:<10} {row['median_ms']:>10.2f} {row['max_ms']:>8.2f} {row['rss_added_mib']:>6.1f} MiB"
                f"{exit_note}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
