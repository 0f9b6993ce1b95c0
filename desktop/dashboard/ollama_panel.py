"""The Ollama panel: its state (by word and shape), version, uptime and restarts, the models loaded in
memory with Unload, a Restart button, and the last lines of its log. The buttons only emit signals: the app
shell sends the calls to the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.availability import ollama_actions
from desktop.dashboard import format as fmt
from desktop.dashboard.cards import tone_colour
from desktop.dashboard.model_table import model_table, selected_name

LOG_LINES = 200


def model_name(model: Mapping[str, Any]) -> str:
    return str(model.get("name") or model.get("model") or "?")


class OllamaPanel(QWidget):
    """Ollama as the engine sees it. Signals: ``unload_requested(model)``, ``restart_requested()``,
    ``log_requested()`` (the user asked for the log again)."""

    unload_requested = Signal(str)
    restart_requested = Signal()
    log_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = QLabel("? Unknown")
        self.version = QLabel("–")
        self.uptime = QLabel("–")
        self.restarts = QLabel("–")
        self.upstream = QLabel("–")
        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        for label in (self.state, self.version, self.uptime, self.restarts, self.upstream, self.reason):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("State:", self.state)
        form.addRow("Version:", self.version)
        form.addRow("Uptime:", self.uptime)
        form.addRow("Restarts:", self.restarts)
        form.addRow("Address:", self.upstream)

        self.models = model_table(["Loaded model", "Size", "In VRAM"])
        self.models.verticalHeader().setDefaultSectionSize(self.models.fontMetrics().height() + 8)
        self.models.itemSelectionChanged.connect(self._selection_changed)
        self.models_note = QLabel("No model is loaded in memory.")
        self.unload = QPushButton("&Unload")
        self.unload.setEnabled(False)
        self.unload.setToolTip("Free the memory of the selected model (Ollama loads it again when asked)")
        self.unload.clicked.connect(self._unload_clicked)
        self.restart = QPushButton("Res&tart Ollama")
        self.restart.clicked.connect(self.restart_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.unload)
        buttons.addWidget(self.restart)
        buttons.addStretch(1)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Ollama's log is empty, or Ollacache does not run this Ollama.")
        self.refresh_log = QPushButton("Reload lo&g")
        self.refresh_log.clicked.connect(self.log_requested)
        log_label = QLabel("<b>&Log</b> (last lines)")
        log_label.setBuddy(self.log)
        log_head = QHBoxLayout()
        log_head.addWidget(log_label)
        log_head.addStretch(1)
        log_head.addWidget(self.refresh_log)
        models_label = QLabel("<b>Mo&dels in memory</b>")
        models_label.setBuddy(self.models)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.reason)
        layout.addWidget(models_label)
        layout.addWidget(self.models_note)
        layout.addWidget(self.models, 1)
        layout.addLayout(buttons)
        layout.addLayout(log_head)
        layout.addWidget(self.log, 2)
        self._tone = "idle"
        self._state: Mapping[str, Any] = {}

    @Slot(dict)
    def show_ollama(self, state: Mapping[str, Any]) -> None:
        """Ollama's state document (/-/health's "ollama"); a "models" list, when present, fills the table."""
        shape, words, self._tone = fmt.ollama_state(state)
        self.state.setText(f"{shape} {words}")
        self._paint_state()
        self.reason.setText(str(state.get("reason") or ""))
        self.version.setText(str(state.get("version") or "–"))
        uptime = state.get("uptime_s")
        self.uptime.setText(
            fmt.seconds(uptime)
            if uptime is not None and state.get("state") in ("running", "attached", "unhealthy")
            else "–"
        )
        self.restarts.setText(fmt.count(state.get("restarts") or 0))
        self.upstream.setText(str(state.get("upstream") or "–"))
        self._state = state
        can = ollama_actions(state)["restart"]
        self.restart.setEnabled(can.enabled)
        self.restart.setToolTip(can.reason)
        if isinstance(state.get("models"), list):
            self.show_models(state["models"])
        elif state.get("state") not in ("running", "attached"):
            self.show_models([])

    @Slot(list)
    def show_models(self, models: list[Mapping[str, Any]]) -> None:
        """The models in memory, as Ollama's /api/ps lists them."""
        selected = self.selected_model()
        self.models.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = [model_name(model), fmt.size(model.get("size")), fmt.size(model.get("size_vram"))]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.models.setItem(row, column, item)
            if cells[0] == selected:
                self.models.selectRow(row)
        self.models_note.setText(ollama_actions(self._state, models)["unload"].reason + ".")
        self.models_note.setVisible(not models)
        self._selection_changed()

    @Slot(list)
    def show_log(self, lines: Iterable[str]) -> None:
        """The last lines of Ollama's log, scrolled to the end."""
        self.log.setPlainText("\n".join(line.rstrip("\n") for line in lines))
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())

    def selected_model(self) -> str | None:
        return selected_name(self.models)

    def _selection_changed(self) -> None:
        self.unload.setEnabled(self.selected_model() is not None)

    def _unload_clicked(self) -> None:
        name = self.selected_model()
        if name is not None:
            self.unload_requested.emit(name)

    def _paint_state(self) -> None:
        palette = self.state.palette()
        palette.setColor(QPalette.ColorRole.WindowText, tone_colour(self, self._tone))
        self.state.setPalette(palette)
