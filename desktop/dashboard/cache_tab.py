"""The Cache tab: what the cache holds, and warming it from a file of requests.

"Warm up from file…" reads and checks a JSONL file as ``ollacache warm`` does (a bad line is named and
nothing is sent), then emits ``warm_requested(items, concurrency)``: the app shell starts the warm-up on
the engine. Its progress comes back through :meth:`CacheTab.show_warm` (the engine's ``warm_did_progress``
and ``warm_did_finish`` events, or ``GET /-/warm``): a progress bar with the counts while it runs, then the
summary and each failure with its line and the upstream's reason. A warm-up started elsewhere (the CLI)
is shown the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.control.warm import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    WarmError,
    WarmFile,
    counts_text,
    read_file,
    summary_text,
)
from desktop.dashboard import format as fmt
from desktop.dashboard.cards import tone_colour

EMPTY = (
    "No warm-up has run yet. Pick a JSONL file with one request a line, "
    '{"endpoint": "/api/chat", "body": {...}}: each is sent through the proxy, and what is already '
    "cached is skipped. The sample resources/warm-sample.jsonl shows the format."
)
FILE_FILTER = "Warm-up requests (*.jsonl *.ndjson *.json);;All files (*)"


class CacheTab(QWidget):
    """Signals: ``warm_requested(list, int)`` (checked requests, concurrency). Slots: ``show_stats(dict)``,
    ``show_warm(dict)`` (a warm-up status), ``show_warm_error(str)`` (the engine refused to start one)."""

    warm_requested = Signal(list, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries = QLabel("–")
        self.entries.setObjectName("cacheEntries")
        font = self.entries.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        self.entries.setFont(font)
        self.volume = QLabel("")
        held = QGroupBox("What the cache holds")
        held_column = QVBoxLayout(held)
        held_column.addWidget(self.entries)
        held_column.addWidget(self.volume)

        self.warm_button = QPushButton("&Warm up from file…")
        self.warm_button.clicked.connect(self.choose_file)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, MAX_CONCURRENCY)
        self.concurrency.setValue(DEFAULT_CONCURRENCY)
        self.concurrency.setSuffix(" at a time")
        self.concurrency.setToolTip("How many requests are sent to Ollama at once")
        controls = QHBoxLayout()
        controls.addWidget(self.warm_button)
        controls.addWidget(self.concurrency)
        controls.addStretch(1)

        self.note = QLabel(EMPTY)  # the empty state, then the file being warmed from
        self.note.setWordWrap(True)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m")
        self.progress.hide()
        self.counts = QLabel("")
        self.counts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failures = QTableWidget(0, 4)
        self.failures.setHorizontalHeaderLabels(["Line", "Route", "Model", "Why it failed"])
        self.failures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.failures.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.failures.verticalHeader().hide()
        header = self.failures.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.failures.hide()

        warm = QGroupBox("Warm up")
        warm_column = QVBoxLayout(warm)
        warm_column.addLayout(controls)
        warm_column.addWidget(self.note)
        warm_column.addWidget(self.error)
        warm_column.addWidget(self.progress)
        warm_column.addWidget(self.counts)
        warm_column.addWidget(self.failures, 1)
        warm_column.addStretch(0)  # keeps the lines together at the top while the table is hidden

        column = QVBoxLayout(self)
        column.addWidget(held)
        column.addWidget(warm, 1)
        self._file: WarmFile | None = None  # the file of the warm-up this tab started (for line numbers)
        self._source = ""
        self.running = False
        self._done_seen = False  # the last run seen has finished: a snapshot saying "running" is older news

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        store = snapshot.get("store") or {}
        entries = store.get("entries")
        self.entries.setText(fmt.plural(entries, "entry", "entries") if entries is not None else "–")
        self.volume.setText(f"{fmt.size(store.get('bytes'))} on disk" if store.get("bytes") is not None else "")
        warm = snapshot.get("warm")
        if isinstance(warm, Mapping) and warm.get("state") == "running" and not self._done_seen:
            # one started elsewhere (the CLI), or before this window opened; a snapshot taken before the run's
            # end can arrive after its warm_did_finish, and must not bring the run back (a new run's own events
            # come first)
            self.show_warm(warm)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Warm up from file", str(Path.home()), FILE_FILTER)
        if path:
            self.warm_from(Path(path))

    def warm_from(self, path: Path) -> bool:
        """Check the file at ``path`` whole and ask for its warm-up; a bad file is said here, nothing sent."""
        try:
            warm_file = read_file(path)
        except WarmError as error:
            self._say_error(f"{error}. Nothing was sent.")
            return False
        self.error.hide()
        self._file, self._source = warm_file, path.name
        self.warm_requested.emit(list(warm_file.items), self.concurrency.value())
        return True

    def _say_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setStyleSheet(f"color: {tone_colour(self, 'bad').name()};")
        self.error.show()

    @Slot(str)
    def show_warm_error(self, message: str) -> None:
        self._say_error(f"Could not start the warm-up: {message}")

    @Slot(dict)
    def show_warm(self, status: Mapping[str, Any]) -> None:
        state = status.get("state")
        if state not in ("running", "done"):
            return
        self._done_seen = state == "done"
        total = int(status.get("total", 0))
        if self._file is not None and len(self._file.items) != total:  # started elsewhere: not this tab's file
            self._file, self._source = None, ""
        done = sum(int(status.get(what, 0)) for what in ("sent", "cached", "failed"))
        source = f" from {self._source}" if self._source else ""
        self.running = state == "running"
        self.warm_button.setEnabled(not self.running)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.show()
        if self.running:
            self.note.setText(
                f"Warming the cache{source}: {fmt.plural(total, 'request')}, "
                f"{status.get('concurrency', DEFAULT_CONCURRENCY)} at a time."
            )
            self.counts.setText(counts_text(status))  # type: ignore[arg-type]
            self.failures.hide()
            return
        self.note.setText(f"Finished warming the cache{source}.")
        summary = summary_text(status)  # type: ignore[arg-type]
        self.counts.setText(summary[0].upper() + summary[1:])
        if "failures" in status:
            self._show_failures(status["failures"], int(status.get("failed", 0)))

    def _show_failures(self, failures: list[Mapping[str, Any]], failed: int) -> None:
        self.failures.setRowCount(0)
        for failure in failures:
            index = int(failure.get("index", 0))
            line = self._file.line_of(index) if self._file and index < len(self._file.lines) else index + 1
            row = self.failures.rowCount()
            self.failures.insertRow(row)
            cells = (
                str(line),
                str(failure.get("endpoint", "")),
                str(failure.get("model") or "–"),
                str(failure.get("error", "")),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.failures.setItem(row, column, item)
        if failed > len(failures):
            self.counts.setText(self.counts.text() + f" (the first {len(failures)} failures are listed)")
        self.failures.setVisible(bool(failures))
