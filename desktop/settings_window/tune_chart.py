"""A bar chart of a tuning run: generation speed (tokens per second) for each thread count measured.

Drawn with QPainter like the dashboard's charts (:mod:`desktop.dashboard.charts`): labelled axes with
units, a value on each bar, and the fastest thread count told by text ("fastest") and a hatched fill as
well as by colour, so it reads in grey and for colour-blind users. Colours come from the palette, so light
and dark schemes both work. With no run yet it says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.dashboard.charts import nice_step

EMPTY_TEXT = "No measurement yet: Tune now measures each thread count and draws its speed here."


class TuneChart(QWidget):
    """:meth:`show_result` takes a run's ``result`` (``results`` rows and ``best``); :attr:`bars` is what
    is drawn, as (thread count, tokens per second), and :attr:`best` the fastest thread count."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bars: list[tuple[int, float]] = []
        self.best: int | None = None
        self.model: str | None = None
        self.setMinimumHeight(200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAccessibleName("Tokens per second for each thread count")

    def sizeHint(self) -> QSize:
        return QSize(480, 220)

    def show_result(self, result: Mapping[str, Any] | None) -> None:
        rows: Iterable[Mapping[str, Any]] = (result or {}).get("results") or []
        self.bars = sorted((int(row["num_thread"]), float(row["tokens_per_s"])) for row in rows)
        best = (result or {}).get("best") or {}
        self.best = int(best["num_thread"]) if "num_thread" in best else None
        self.model = (result or {}).get("model")
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        muted = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        metrics = painter.fontMetrics()
        line = metrics.height()
        if not self.bars:
            painter.setPen(muted)
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, EMPTY_TEXT)
            return
        top_value = max(speed for _, speed in self.bars)
        step = nice_step(top_value or 1.0)
        y_max = step * (int(top_value / step) + 1)
        ticks = [step * index for index in range(int(round(y_max / step)) + 1)]
        left = max(metrics.horizontalAdvance(f"{tick:,.6g}") for tick in ticks) + line + 12
        plot = QRectF(left, line * 2, self.width() - left - 12, self.height() - line * 5)
        painter.setPen(text)
        title = "Generation speed by thread count" + (f" ({self.model})" if self.model else "")
        painter.drawText(QRectF(0, 0, self.width(), line * 1.5), Qt.AlignmentFlag.AlignLeft, title)
        grid = QPen(muted, 1, Qt.PenStyle.DotLine)
        for tick in ticks:
            y = plot.bottom() - plot.height() * tick / y_max
            painter.setPen(grid)
            painter.drawLine(int(plot.left()), int(y), int(plot.right()), int(y))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y - line / 2, left - 6, line),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{tick:,.6g}",
            )
        painter.save()
        painter.translate(line * 0.2, plot.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-plot.height() / 2, 0, plot.height(), line), Qt.AlignmentFlag.AlignCenter, "tokens/s")
        painter.restore()
        painter.drawLine(int(plot.left()), int(plot.bottom()), int(plot.right()), int(plot.bottom()))
        slot = plot.width() / len(self.bars)
        width = min(slot * 0.6, line * 6)
        hue = palette.color(QPalette.ColorRole.Highlight)
        for index, (threads, speed) in enumerate(self.bars):
            x = plot.left() + slot * index + (slot - width) / 2
            height = plot.height() * speed / y_max
            bar = QRectF(x, plot.bottom() - height, width, height)
            winner = threads == self.best
            colour = QColor(hue) if winner else QColor(muted)
            painter.setPen(QPen(colour.darker(130), 1))
            painter.setBrush(QBrush(colour))
            painter.drawRect(bar)
            if winner:  # the fastest is also hatched: shape as well as colour
                painter.setBrush(QBrush(palette.color(QPalette.ColorRole.Base), Qt.BrushStyle.BDiagPattern))
                painter.drawRect(bar)
            painter.setPen(text)
            label = f"{speed:,.1f}" + (" · fastest" if winner else "")
            painter.drawText(
                QRectF(x - slot / 2, bar.top() - line, width + slot, line), Qt.AlignmentFlag.AlignCenter, label
            )
            painter.drawText(
                QRectF(plot.left() + slot * index, plot.bottom() + 2, slot, line),
                Qt.AlignmentFlag.AlignCenter,
                f"{threads:,}",
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + line + 2, plot.width(), line), Qt.AlignmentFlag.AlignCenter, "threads"
        )
