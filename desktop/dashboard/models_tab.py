"""The Models tab: the models Ollama has installed, as the model lists of Ollama's app and LM Studio show them
(name, family, parameters, quantisation, size on disk, when it changed), which are loaded in memory (RAM and
VRAM, and when Ollama unloads them) with the resident memory of their runner processes (which holds llama.cpp's
prompt cache too, and which Ollama does not report), Unload, and per model what the cache does for it (its
cached answers, hit rate and time saved). Empty states say why in words. The tab only has slots and signals:
the app shell asks the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidgetItem, QVBoxLayout, QWidget

from core.units import listing
from desktop.availability import no, not_ollama, ollama_actions
from desktop.dashboard import format as fmt
from desktop.dashboard.model_table import model_table, selected_name

COLUMNS = (
    "Model",
    "Family",
    "Parameters",
    "Quantisation",
    "On disk",
    "Changed",
    "In memory",
    "Runner RAM",
    "Unloads",
    "Cached",
    "Hit rate",
    "Time saved",
)
NUMERIC = {"On disk", "In memory", "Runner RAM", "Cached", "Hit rate", "Time saved"}
HEADER_TIPS = {
    "In memory": "What Ollama says the loaded model takes, and how much of it is in the graphics card's memory",
    "Runner RAM": "The resident memory of the model's runner process, its prompt cache included",
    "Unloads": "When Ollama unloads the model unless it is used again",
    "Cached": "Answers of this model in the cache",
    "Hit rate": "Requests for this model answered from the cache",
    "Time saved": "Model time the cache's answers for this model saved",
}
NO_MODEL_LIST = "the server at Ollama's address is not Ollama, and has no model list"
NO_RUNNER = (
    "No runner process of this model could be read here: Ollama runs on another machine or as another user,"
    " or the model is still loading"
)


def when(value: Any) -> str:
    """An ISO 8601 moment as the local date, or the time of day when it is today."""
    try:
        moment = datetime.fromisoformat(str(value)).astimezone()
    except (TypeError, ValueError):
        return "–"
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%Y-%m-%d")


def in_memory(loaded: Mapping[str, Any] | None) -> str:
    """RAM and VRAM a loaded model uses: "4.1 GiB in VRAM" (all of it), "4.1 GiB (1.0 GiB in VRAM)", "4.1 GiB in
    RAM", "–"."""
    if not loaded:
        return "–"
    size, vram = int(loaded.get("size") or 0), int(loaded.get("size_vram") or 0)
    if vram and vram >= size:
        return f"{fmt.size(size)} in VRAM"
    return f"{fmt.size(size)} ({fmt.size(vram)} in VRAM)" if vram else f"{fmt.size(size)} in RAM"


def runner_memory(name: str, loaded: Mapping[str, Any] | None) -> tuple[str, str]:
    """The resident memory of a loaded model's runner, and what it is (a tooltip): "1.6 GiB", or "9.4 GiB, 2 models"
    where the runners of several models could not be told apart and their total is shown."""
    if not loaded:
        return "–", ""
    runner = loaded.get("runner")
    if not isinstance(runner, Mapping):
        return "–", NO_RUNNER
    rss, models = fmt.size(runner.get("rss_bytes")), [str(model) for model in runner.get("models") or [name]]
    pids = ", ".join(str(pid) for pid in runner.get("pids") or [])
    if models == [name]:
        return rss, (
            f"Resident memory of this model's runner process (pid {pids}): the model, its working memory and"
            " llama.cpp's prompt cache"
        )
    return f"{rss}, {len(models)} models", (
        f"Ollama's runners could not be told apart by their model file, so this is the total of the runners of"
        f" {listing(models)} (pids {pids})"
    )


class ModelsTab(QWidget):
    """The installed models; ``unload_requested(model)`` and ``refresh_requested()`` for the shell."""

    unload_requested = Signal(str)
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = model_table(COLUMNS)
        # Twelve columns may not fit the window: every column keeps its content's width (the model's name above
        # all, which a stretching column would give up first), the table scrolls sideways, and the last column
        # takes what room is left.
        for column, name in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(column).setToolTip(HEADER_TIPS.get(name, ""))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.note = QLabel("Asking Ollama for its models…")
        self.note.setWordWrap(True)
        self.unload = QPushButton("Unload from memor&y")
        self.unload.clicked.connect(self._unload_clicked)
        self.refresh = QPushButton("Re&fresh")
        self.refresh.clicked.connect(self.refresh_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.unload)
        buttons.addWidget(self.refresh)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.ollama: Mapping[str, Any] = {}
        self.installed: list[Mapping[str, Any]] = []
        self.unavailable: str | None = None  # why the installed models could not be listed, the last time asked
        self.loaded: dict[str, Mapping[str, Any]] = {}
        self.by_model: Mapping[str, Mapping[str, Any]] = {}
        self._selection_changed()

    @Slot(list)
    def show_installed(self, models: Sequence[Mapping[str, Any]]) -> None:
        self.installed, self.unavailable = list(models), None
        self._fill()

    @Slot(list)
    def show_loaded(self, models: Sequence[Mapping[str, Any]]) -> None:
        self.loaded = {str(model.get("name") or model.get("model")): model for model in models}
        self._fill()

    def show_unavailable(self, why: str) -> None:
        """Ollama could not be asked: the table keeps what it showed, the note says why (until a list comes)."""
        self.unavailable = why
        self.note.setText(f"Ollama's models cannot be listed now: {why}")
        self.note.show()

    @Slot(dict)
    def show_ollama(self, ollama: Mapping[str, Any]) -> None:
        self.ollama = ollama
        if not_ollama(ollama) and self.unavailable not in (None, NO_MODEL_LIST):  # asked before that was known
            self.show_unavailable(NO_MODEL_LIST)
        elif self.unavailable == NO_MODEL_LIST and not not_ollama(ollama):  # an Ollama answers there now
            self.refresh_requested.emit()
        self._selection_changed()

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        by_model = snapshot.get("by_model")
        if isinstance(by_model, Mapping) and by_model != self.by_model:
            self.by_model = by_model
            self._fill()

    def _fill(self) -> None:
        selected = self.selected_model()
        self.table.setRowCount(len(self.installed))
        for row, model in enumerate(self.installed):
            name = str(model.get("name") or "?")
            counts = self.by_model.get(name) or {}
            loaded = self.loaded.get(name)
            runner_text, runner_tip = runner_memory(name, loaded)
            cells = [
                name,
                str(model.get("family") or "–"),
                str(model.get("parameter_size") or "–"),
                str(model.get("quantization") or "–"),
                fmt.size(model.get("size")),
                when(model.get("modified_at")),
                in_memory(loaded),
                runner_text,
                when(loaded.get("expires_at")) if loaded else "–",
                fmt.count(model.get("entries") or 0),
                fmt.percent(counts.get("hit_rate")) if counts.get("requests") else "–",
                fmt.seconds(counts.get("time_saved_s") or 0.0) if counts else "–",
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if COLUMNS[column] in NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if COLUMNS[column] == "Runner RAM":
                    item.setToolTip(runner_tip)
                self.table.setItem(row, column, item)
            if name == selected:
                self.table.selectRow(row)
        if self.unavailable is not None:  # the loaded models came, but the installed ones could not be asked
            self.note.setText(f"Ollama's models cannot be listed now: {self.unavailable}")
            self.note.show()
        elif self.installed:
            self.note.hide()
        else:
            self.note.setText(
                "Ollama has no model installed yet. Get one with: ollama pull llama3.2 (or from "
                "Ollama's own app); it shows here once it is installed."
            )
            self.note.show()
        self._selection_changed()

    def selected_model(self) -> str | None:
        return selected_name(self.table)

    def _selection_changed(self) -> None:
        selected = self.selected_model()
        can = ollama_actions(self.ollama or None, list(self.loaded.values()))["unload"]
        if can.enabled and selected is not None and selected not in self.loaded:
            can = no(f"{selected} is not loaded in memory")
        elif can.enabled and selected is None:
            can = no("Select a loaded model first")
        self.unload.setEnabled(can.enabled)
        self.unload.setToolTip(can.reason or "Free the memory this model uses (Ollama loads it again when asked)")

    def _unload_clicked(self) -> None:
        if (name := self.selected_model()) is not None:
            self.unload_requested.emit(name)
