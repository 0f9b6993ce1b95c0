"""Live time charts drawn with QPainter: a few series over the last 5, 15 or 60 minutes.

Why QPainter and not a chart library: bench/chart_draw.py redraws one chart of 3 series x 3,600 points
(an hour at 1 Hz) offscreen with each candidate in the same run. On a 2-core machine (median of 60-100
redraws, three runs) QPainter took 2-4 ms per redraw and added 7-10 MiB of RSS; QtCharts (deprecated since
Qt 6.10) 22-34 ms and 17-19 MiB, as every refresh hands it the series again; pyqtgraph 18-26 ms and 54-64 MiB
with numpy, and its process aborted at interpreter exit ("deallocating True or False") in every run.
The lines are kept as QPolygonF in data coordinates and painted through one transform with a cosmetic
one-pixel pen (Qt's fast antialiased path; a 2-pixel pen took 40 ms for 3,600 points), so a redraw loops
over no points in Python.

Series are told apart by line style (solid, dashed, dotted) as well as colour, the legend shows both, and
the colours come from the palette so light and dark schemes both work.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen, QPolygonF, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_POINTS = 3600  # an hour at one sample a second
STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)


@dataclass(frozen=True)
class Series:
    """One line: its legend name and its hue (0-359), the lightness follows the palette."""

    name: str
    hue: int


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` intervals over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # pragma: no cover - the loop returns at 10


def time_step(window_s: float) -> float:
    """The spacing of time ticks for a window: whole minutes, about 5 ticks."""
    for step in (60, 120, 180, 300, 600, 900, 1200, 1800):
        if window_s / step <= 6:
            return float(step)
    return 3600.0


class TimeChart(QWidget):
    """A line chart of named series against wall-clock time, with labelled axes, grid and legend.

    ``append(t, values)`` adds one sample (``t`` in seconds since the epoch, one value per series, None for a
    gap); ``set_window(seconds)`` chooses how much history shows. The value axis starts at 0 and grows to
    the largest visible value (or ``y_max`` when fixed, e.g. 100 for a percentage).
    """

    def __init__(
        self,
        title: str,
        y_label: str,
        series: Sequence[Series],
        y_format: Callable[[float], str] = lambda v: f"{v:,.6g}",
        y_max: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.y_label = y_label
        self.series = list(series)
        self.y_format = y_format
        self.y_max = y_max
        self.window_s = 300.0
        self.times: deque[float] = deque(maxlen=MAX_POINTS)
        self.values: list[deque[float | None]] = [deque(maxlen=MAX_POINTS) for _ in self.series]
        # the lines, in data coordinates (seconds since `origin`, value), split at gaps; painted through a
        # transform, so a redraw hands Qt whole polygons and loops over no points in Python
        self.lines: list[deque[QPolygonF]] = [deque() for _ in self.series]
        self.origin: float | None = None
        self.now: Callable[[], float] = time.time
        self.note = ""  # said over the plot: why a series cannot be drawn
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        line_h = QFontMetrics(self.font()).height()
        # tall enough for the value axis's title, written along it, never to be cut
        self.setMinimumSize(320, max(180, QFontMetrics(self.font()).horizontalAdvance(y_label) + line_h * 4 + 24))
        self.setAccessibleName(title)

    def set_note(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(480, 220)

    def append(self, t: float, values: Sequence[float | None]) -> None:
        """Add one sample and repaint."""
        if self.origin is None:
            self.origin = t
        full = len(self.times) == MAX_POINTS
        self.times.append(t)
        for column, lines, value in zip(self.values, self.lines, values, strict=True):
            if full and column[0] is not None:  # the oldest point leaves its line
                lines[0].removeFirst()
                if lines[0].isEmpty():
                    lines.popleft()
            gap = not column or column[-1] is None
            column.append(value)
            if value is not None:
                if gap or not lines:
                    lines.append(QPolygonF())
                lines[-1].append(QPointF(t - self.origin, float(value)))
        self.update()

    def set_window(self, seconds: float) -> None:
        self.window_s = float(seconds)
        self.update()

    def clear(self) -> None:
        self.times.clear()
        for column, lines in zip(self.values, self.lines, strict=True):
            column.clear()
            lines.clear()
        self.origin = None
        self.update()

    def colour(self, series: Series) -> QColor:
        """The series colour: its hue, dark on a light window and light on a dark one."""
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        return QColor.fromHsl(series.hue, 200, 170 if dark else 90)

    def visible(self) -> tuple[float, float, int]:
        """The time range shown and the index of the first sample inside it."""
        end = self.times[-1] if self.times else self.now()
        start = end - self.window_s
        first = bisect.bisect_left(self.times, start)
        return start, end, first

    def peak(self, first: int) -> float:
        """The largest value shown, from sample ``first`` on."""
        count = len(self.times) - first
        return max(
            (v for column in self.values for v in itertools.islice(reversed(column), count) if v is not None),
            default=0.0,
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002 - Qt's signature
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        grid = palette.color(QPalette.ColorRole.Mid)
        metrics = QFontMetrics(self.font())
        line_h = metrics.height()
        start, end, first = self.visible()
        peak = self.peak(first)
        top_value = self.y_max if self.y_max is not None else (peak * 1.1 if peak > 0 else 1.0)
        step = nice_step(top_value)
        top_value = self.y_max if self.y_max is not None else step * math.ceil(top_value / step)
        y_ticks = [step * k for k in range(int(round(top_value / step)) + 1)]
        left = max(metrics.horizontalAdvance(self.y_format(v)) for v in y_ticks) + line_h + 10
        plot = QRectF(left, line_h * 2 + 4, max(self.width() - left - 12, 10), max(self.height() - line_h * 4 - 8, 10))

        painter.setPen(text)
        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QRectF(0, 0, self.width(), line_h + 2), Qt.AlignmentFlag.AlignLeft, self.title)
        painter.setFont(self.font())
        self._legend(painter, line_h)

        painter.setPen(text)
        painter.save()
        painter.translate(line_h * 0.2, plot.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-plot.height() / 2, 0, plot.height(), line_h), Qt.AlignmentFlag.AlignCenter, self.y_label
        )
        painter.restore()

        def y_of(value: float) -> float:
            return plot.bottom() - plot.height() * min(value / top_value, 1.0)

        def x_of(t: float) -> float:
            return plot.left() + plot.width() * (t - start) / self.window_s

        for value in y_ticks:
            y = y_of(value)
            painter.setPen(QPen(grid, 0, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y - line_h / 2, left - 6, line_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                self.y_format(value),
            )
        tick = time_step(self.window_s)
        t = math.ceil(start / tick) * tick
        while t <= end:
            x = x_of(t)
            painter.setPen(QPen(grid, 0, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(text)
            label = time.strftime("%H:%M", time.localtime(t))
            half = metrics.horizontalAdvance(label) / 2
            if plot.left() + half <= x <= plot.right() - half + 8:  # no label over the value axis or cut off
                painter.drawText(QRectF(x - 40, plot.bottom() + 2, 80, line_h), Qt.AlignmentFlag.AlignHCenter, label)
            t += tick
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + line_h + 2, plot.width(), line_h),
            Qt.AlignmentFlag.AlignHCenter,
            f"time (last {self.window_s / 60:.0f} min)",
        )
        painter.setPen(QPen(text, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())

        if self.note:
            painter.drawText(
                plot.adjusted(6, 4, -6, -4),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                self.note,
            )
        if first >= len(self.times):
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Waiting for the first sample…")
            painter.end()
            return
        painter.setClipRect(plot.adjusted(-1, -1, 1, 1))
        origin = self.origin or 0.0
        scale_x = plot.width() / self.window_s
        scale_y = plot.height() / top_value
        # data (seconds since origin, value) -> pixels: x grows with time, y grows upwards
        painter.setTransform(
            QTransform(scale_x, 0, 0, -scale_y, plot.left() + (origin - start) * scale_x, plot.bottom())
        )
        for number, (series, lines) in enumerate(zip(self.series, self.lines, strict=True)):
            pen = QPen(self.colour(series), 1.0, STYLES[number % len(STYLES)])
            pen.setCosmetic(True)  # one pixel wide whatever the transform: Qt's fast antialiased path
            painter.setPen(pen)
            for line in lines:
                if line.size() == 1:
                    painter.drawPoint(line.first())
                else:
                    painter.drawPolyline(line)
        painter.end()

    def _legend(self, painter: QPainter, line_h: int) -> None:
        metrics = QFontMetrics(self.font())
        x = float(self.width() - 8)
        for number in range(len(self.series) - 1, -1, -1):
            series = self.series[number]
            x -= metrics.horizontalAdvance(series.name)
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(QPointF(x, line_h * 2 - 4), series.name)
            x -= 30
            painter.setPen(QPen(self.colour(series), 2, STYLES[number % len(STYLES)]))
            y = line_h * 2 - 4 - metrics.ascent() / 3
            painter.drawLine(QPointF(x, y), QPointF(x + 24, y))
            x -= 14
