"""The live charts: hit rate, hits and misses per second, CPU and memory of the system, Ollama (with its
runners) and Ollacache, over the last 5, 15 or 60 minutes, one sample per /-/stats document."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop.dashboard.charts import Series, TimeChart

WINDOWS_MIN = (5, 15, 60)
MiB = 2**20


def _mib(value: float) -> str:
    return f"{value:,.0f} MiB" if value >= 10 or value == 0 else f"{value:,.1f} MiB"


def per_second(value: float) -> str:
    """A rate as people write it: "1,500/s", "25/s", "0.5/s"."""
    return f"{value:,.0f}/s" if value >= 10 or value == 0 else f"{value:.2g}/s"


class LiveCharts(QWidget):
    """Four charts and the choice of window; `show_stats` adds one sample to each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clock: Callable[[], float] = time.time
        # each point of the hit rate is the rate over the minute before it, whatever the window shown
        self.hit_rate = TimeChart(
            "Hit rate", "% over a minute", [Series("hit rate", 210)], y_format=lambda v: f"{v:,.0f} %", y_max=100
        )
        self.traffic = TimeChart(
            "Hits and misses", "per second", [Series("hits", 130), Series("misses", 20)], y_format=per_second
        )
        self.cpu = TimeChart(
            "CPU",
            "% of all cores",
            [Series("system", 210), Series("Ollama", 280), Series("Ollacache", 30)],
            y_format=lambda v: f"{v:,.0f} %",
            y_max=100,
        )
        self.memory = TimeChart(
            "Memory", "in RAM", [Series("system", 210), Series("Ollama", 280), Series("Ollacache", 30)], y_format=_mib
        )
        self.window = QComboBox()
        for minutes in WINDOWS_MIN:
            self.window.addItem(f"Last {minutes} minutes", minutes * 60)
        self.window.currentIndexChanged.connect(self._window_changed)
        label = QLabel("&View:")
        label.setBuddy(self.window)
        top = QHBoxLayout()
        top.addWidget(label)
        top.addWidget(self.window)
        top.addStretch(1)
        grid = QGridLayout()
        for index, chart in enumerate(self.charts()):
            grid.addWidget(chart, index // 2, index % 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(grid, 1)
        self._last: tuple[float, int, int] | None = None  # (uptime_s, hits, misses) of the previous sample

    def charts(self) -> list[TimeChart]:
        return [self.hit_rate, self.traffic, self.cpu, self.memory]

    def set_window_minutes(self, minutes: int) -> None:
        index = self.window.findData(minutes * 60)
        if index >= 0:
            self.window.setCurrentIndex(index)

    def _window_changed(self, index: int) -> None:
        seconds = float(self.window.itemData(index))
        for chart in self.charts():
            chart.set_window(seconds)

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        now = self.clock()
        minute = (snapshot.get("rates") or {}).get("1m") or {}
        lookups = sum(minute.get(name) or 0.0 for name in ("hits_per_s", "shared_per_s", "misses_per_s"))
        self.hit_rate.append(now, [minute["hit_rate"] * 100 if lookups and "hit_rate" in minute else None])
        self.traffic.append(now, list(self._per_second(snapshot)))
        resources = snapshot.get("resources") or {}
        system = resources.get("system") or {}
        ollama = resources.get("ollama") or {}
        proxy = resources.get("proxy") or {}
        cores = max(int(system.get("cpu_count") or 1), 1)

        def share(tree: Mapping[str, Any]) -> float | None:  # a process's % of one core -> % of all cores
            value = tree.get("cpu_percent")
            return None if value is None else value / cores

        unreadable = resources.get("ollama_unreadable")
        note = f"Ollama's use cannot be read: {unreadable}." if unreadable else ""
        self.cpu.set_note(note)
        self.memory.set_note(note)
        self.cpu.append(now, [system.get("cpu_percent"), share(ollama), share(proxy)])
        self.memory.append(
            now,
            [
                _in_mib(system.get("memory_used_bytes")),
                _in_mib(ollama.get("rss_bytes")),
                _in_mib(proxy.get("rss_bytes")),
            ],
        )

    def _per_second(self, snapshot: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Hits and misses per second since the previous document (None for the first, or after a reset).

        Shared answers count with the hits: neither cost a call to Ollama of its own.
        """
        totals = snapshot.get("totals") or {}
        uptime = snapshot.get("uptime_s")
        hits = int(totals.get("hits") or 0) + int(totals.get("shared") or 0)
        misses = int(totals.get("misses") or 0)
        previous, self._last = self._last, (float(uptime), hits, misses) if uptime is not None else None
        if previous is None or self._last is None:
            return None, None
        elapsed = self._last[0] - previous[0]
        if elapsed <= 0 or hits < previous[1] or misses < previous[2]:  # the engine restarted
            return None, None
        return (hits - previous[1]) / elapsed, (misses - previous[2]) / elapsed


def _in_mib(value: float | None) -> float | None:
    return None if value is None else value / MiB
