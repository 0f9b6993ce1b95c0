"""Which model and which tool the cache helps most: hits, hit rate, time saved and tokens saved per model
and per client, and per API key while Ollacache is shared, from the /-/stats document, the biggest saving first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.dashboard import format as fmt

COLUMNS = ("Requests", "Hits", "Hit rate", "Time saved", "Tokens saved")


CELL_PADDING = "QTableView::item { padding: 0 10px; }"  # columns sized to their contents breathe


class _Item(QTableWidgetItem):
    """A cell shown as formatted text and sorted by its number."""

    def __init__(self, text: str, key: float) -> None:
        super().__init__(text)
        self.key = key
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.key < other.key if isinstance(other, _Item) else super().__lt__(other)


class BreakdownTable(QTableWidget):
    """One table: a row per name (model or client)."""

    def __init__(self, first: str, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS) + 1, parent)
        self.setHorizontalHeaderLabels([first, *COLUMNS])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.setStyleSheet(CELL_PADDING)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setSortingEnabled(True)
        self.sortByColumn(COLUMNS.index("Time saved") + 1, Qt.SortOrder.DescendingOrder)  # the user may re-sort

    def show_rows(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for row, (name, counts) in enumerate(rows.items()):
            # answered without a call of their own: from the cache, or shared with an identical one in flight
            hits = int(counts.get("hits") or 0) + int(counts.get("shared") or 0)
            rate = counts.get("hit_rate") if hits + int(counts.get("misses") or 0) else None
            saved = float(counts.get("time_saved_s") or 0.0)
            tokens = int(counts.get("tokens_saved") or 0)
            requests = int(counts.get("requests") or 0)
            self.setItem(row, 0, QTableWidgetItem(name))
            cells = [
                (fmt.count(requests), requests),
                (fmt.count(hits), hits),
                (fmt.percent(rate), rate if rate is not None else -1.0),
                (fmt.seconds(saved), saved),
                (fmt.count(tokens), tokens),
            ]
            for column, (text, key) in enumerate(cells, start=1):
                self.setItem(row, column, _Item(text, float(key)))
        self.setSortingEnabled(True)  # sorts again by the header's indicator


class Breakdown(QWidget):
    """Per model and per client, each with a line when there is nothing to show yet, and per API key when there
    is one to show (a proxy that is not shared has none)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = BreakdownTable("Model")
        self.clients = BreakdownTable("Client")
        self.models_note = QLabel("No model has been asked yet.")
        self.clients_note = QLabel(
            "No client has been seen yet; each is named from its User-Agent "
            "(ollama-python, openai-python, LangChain, curl, a browser…)."
        )
        self.clients_note.setWordWrap(True)
        self.keys = BreakdownTable("API key")
        self.keys_heading = QLabel("<b>Per API &key</b>")  # shown once a shared proxy has seen a key
        layout = QVBoxLayout(self)
        for heading, note, table in (
            (QLabel("<b>Per mod&el</b>"), self.models_note, self.models),
            (QLabel("<b>Per &client</b>"), self.clients_note, self.clients),
            (self.keys_heading, None, self.keys),
        ):
            heading.setBuddy(table)
            layout.addWidget(heading)
            if note is not None:
                layout.addWidget(note)
            layout.addWidget(table, 1)
        self.keys_heading.hide()
        self.keys.hide()

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        for table, note, keys in (
            (self.models, self.models_note, ("by_model", "models")),
            (self.clients, self.clients_note, ("by_client", "clients")),
        ):
            rows = fmt.rows(snapshot, *keys)
            table.show_rows(rows)
            note.setVisible(not rows)
        keyed = fmt.rows(snapshot, "keys")
        self.keys.show_rows(keyed)
        self.keys_heading.setVisible(bool(keyed))
        self.keys.setVisible(bool(keyed))
