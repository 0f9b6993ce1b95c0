"""The table of recent requests, newest first, bounded: time, client, model, route (streamed answers marked),
HIT / SHARED / PARTIAL / MISS / BYPASS, status, latency and tokens of each request the engine reports. A request still
being answered by Ollama shows as running and is completed in place when it finishes; errors read red. No prompt
text is ever shown."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QStackedWidget, QTableView, QWidget

from desktop.dashboard import format as fmt

MAX_ROWS = 500
COLUMNS = ("Time", "Client", "Model", "Route", "Cache", "Status", "Latency", "Tokens")
NUMERIC = {"Status", "Latency", "Tokens"}
# the cache outcome by word and shape, so it reads without colour
OUTCOMES = {
    "hit": "● HIT",
    "shared": "◑ SHARED",
    "partial": "◔ PARTIAL",
    "miss": "○ MISS",
    "refresh": "↻ REFRESH",
    "bypass": "↷ BYPASS",
    "error": "✕ ERROR",
}
Index = QModelIndex | QPersistentModelIndex


def event_time(value: Any) -> str:
    """The request's local clock time (HH:MM:SS) from an ISO 8601 string or epoch seconds."""
    try:
        moment = (
            datetime.fromisoformat(value)
            if isinstance(value, str)
            else datetime.fromtimestamp(float(value) if value is not None else time.time())
        )
    except (TypeError, ValueError):
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%H:%M:%S")


def outcome(cache: Any) -> str:
    word = str(cache or "").lower()
    return OUTCOMES.get(word, word.upper() or "–")


CELL_PADDING = "QTableView::item { padding: 0 10px; }"  # columns sized to their contents breathe
ERROR_COLOUR = QColor.fromHsl(0, 180, 110)


def _failed(row: tuple[Any, ...]) -> bool:
    status = row[COLUMNS.index("Status")].replace(",", "")
    return (
        row[COLUMNS.index("Cache")] == OUTCOMES["error"] or (status.isdigit() and int(status) >= 400) or status == "0"
    )


Row = tuple[Any, ...]  # the cells of COLUMNS, then the request's id (None: not told while it ran)
RUNNING = "… running"


def _row(event: Mapping[str, Any], running: bool) -> Row:
    route = str(event.get("route") or "–") + (" · stream" if event.get("streamed") else "")
    if running:
        cells: tuple[str, ...] = (
            event_time(event.get("time")),
            str(event.get("client") or "–"),
            str(event.get("model") or "–"),
            route,
            RUNNING,
            "",
            "",
            "",
        )
    else:
        cells = (
            event_time(event.get("time")),
            str(event.get("client") or "–"),
            str(event.get("model") or "–"),
            route,
            outcome(event.get("cache")),
            fmt.count(event.get("status")),
            fmt.milliseconds(event.get("latency_ms")),
            fmt.count(event.get("tokens")),
        )
    return (*cells, event.get("id"))


class RequestsModel(QAbstractTableModel):
    """The last `MAX_ROWS` request events as table rows, newest at the top."""

    def __init__(self, limit: int = MAX_ROWS) -> None:
        super().__init__()
        self.events: deque[Row] = deque(maxlen=limit)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.events)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.events[index.row()][index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and _failed(self.events[index.row()]):
            return ERROR_COLOUR  # an error reads red, and by its status and ✕ without colour
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[index.column()] in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def add(self, event: Mapping[str, Any]) -> None:
        self.add_many([event])

    def add_many(self, events: Sequence[Mapping[str, Any]], running: bool = False) -> None:
        """A batch of requests, oldest first (``running``: started, not finished yet): one update of the view for
        all of them. A finished request whose start is shown takes its row."""
        if not events:
            return
        rows: list[Row] = []
        places = {row[-1]: index for index, row in enumerate(self.events) if row[-1] is not None}
        for event in events[-(self.events.maxlen or MAX_ROWS) :]:
            row = _row(event, running)
            if not running and (place := places.get(row[-1])) is not None:
                self.events[place] = row  # completed in place
            else:
                rows.append(row)
        self.beginResetModel()
        self.events.extendleft(rows)  # the newest ends up on top
        self.endResetModel()


class RequestsTable(QStackedWidget):
    """The table, or before the first request a line saying how to get one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = RequestsModel()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 8)
        self.view.setStyleSheet(CELL_PADDING)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Model"), QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setText("No requests yet.\nEach request shows here as it finishes (no prompt text).")
        self.addWidget(self.empty)
        self.addWidget(self.view)

    def set_endpoint(self, url: str) -> None:
        self.empty.setText(
            f"No requests yet: point a tool at {url}\nEach request shows here as it finishes (no prompt text)."
        )

    @Slot(dict)
    def add_request(self, event: Mapping[str, Any]) -> None:
        self.add_requests([event])

    def add_requests(self, events: Sequence[Mapping[str, Any]], running: bool = False) -> None:
        """A batch of finished requests (``requests_did_finish``), or of requests still running
        (``requests_did_start``), oldest first."""
        self.model.add_many(events, running)
        if events:
            self.setCurrentWidget(self.view)
