"""The Performance tab's own panel: this machine, the values recommended for it beside those in use, and
Tune now with its live progress, a chart of its result and Apply the winner.

It reads the engine's ``GET /-/hardware`` (the detected hardware, ``recommended``: the tuning in force,
with the ``tuning.*`` settings the user set in ``from_settings``, and ``for_this_machine``: what the
hardware alone recommends) and ``GET /-/tune``; a run's progress and end come from the feed's
``tune_did_progress`` and ``tune_did_finish`` events, never from polling. Both Apply buttons go through
``PUT /-/settings``, so what they change is written to ``config.toml`` like any other setting and restarts
the Ollama Ollacache runs: Apply recommended clears the user's ``tuning.*`` values (those not set by the
environment or a flag), Apply the winner sets ``tuning.num_thread`` to the fastest thread count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.tuning.verdict import summary
from core.units import human_bytes, plural
from desktop.availability import Availability, ollama_actions
from desktop.settings_window.tune_chart import TuneChart
from desktop.windows import AppContext

# The values the engine tunes, in the order shown, with the words a person reads.
VALUES: tuple[tuple[str, str], ...] = (
    ("num_thread", "Threads"),
    ("num_ctx", "Context length"),
    ("keep_alive", "Keep-alive"),
    ("num_parallel", "Parallel requests"),
    ("max_loaded_models", "Models kept loaded"),
    ("flash_attention", "Flash attention"),
    ("kv_cache_type", "KV cache type"),
    ("prompt_cache_ram", "Prompt cache"),
)
TUNE_RUNS = (1, 3)


def shown(name: str, value: Any) -> str:
    """One tuned value as a person reads it, with its unit."""
    if value is None or (name == "max_loaded_models" and value == 0):
        return "left to Ollama"
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "num_ctx":
        return f"{value:,} tokens"
    if name == "num_thread":
        return plural(value, "thread")
    if name == "num_parallel":
        return f"{value:,} at a time"
    if name == "prompt_cache_ram":
        return f"{value:,} MiB per model" if value else "off"
    return f"{value:,}" if isinstance(value, int) else str(value)


def machine_lines(doc: Mapping[str, Any]) -> dict[str, str]:
    """The hardware part of ``/-/hardware`` as rows of label and text."""
    simd = doc.get("simd") or "none"
    extras = ", ".join(doc.get("simd_extras") or [])
    cores = (
        f"{doc.get('physical_cores', '?')} physical ({doc.get('performance_cores', '?')} performance, "
        f"{doc.get('efficiency_cores', 0)} efficiency), {doc.get('logical_cpus', '?')} logical"
    )
    gpus = doc.get("gpus") or []
    gpu_text = "; ".join(f"{gpu.get('name', 'GPU')}, {human_bytes(gpu.get('memory_bytes'))}" for gpu in gpus)
    limit = doc.get("cpu_limit")
    return {
        "Processor": f"{doc.get('cpu_model') or 'unknown'} · {simd}" + (f" ({extras})" if extras else ""),
        "Cores": cores + (f" · limited to {limit:g} CPUs" if limit else ""),
        "Memory": human_bytes(doc.get("memory_bytes")),
        "GPU": gpu_text or "none found: Ollama runs on the CPU",
    }


class PerformancePanel(QWidget):
    """The panel; :meth:`load` reads the engine. :attr:`editable` (set by the window from the settings
    table) says which ``tuning.*`` settings the user may change here; ``settings_changed`` tells the window
    that an Apply here wrote settings (so its rows are read again)."""

    settings_changed = Signal()

    def __init__(self, context: AppContext | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.editable: dict[str, bool] = {}
        self.hardware: dict[str, Any] = {}
        self.status_line = QLabel("")
        self.status_line.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._machine_box())
        layout.addWidget(self._values_box())
        layout.addWidget(self._tune_box())
        layout.addWidget(self.status_line)
        if context is not None:
            context.feed.on(("tune_did_progress", "tune_did_finish"), self._event)

    # -- building ---------------------------------------------------------------------------------

    def _machine_box(self) -> QGroupBox:
        box = QGroupBox("This machine")
        form = QFormLayout(box)
        self.machine: dict[str, QLabel] = {}
        for label in ("Processor", "Cores", "Memory", "GPU"):
            self.machine[label] = QLabel("…")
            self.machine[label].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{label}:", self.machine[label])
        return box

    def _values_box(self) -> QGroupBox:
        box = QGroupBox("Ollama's settings: recommended for this machine, and in use")
        grid = QGridLayout(box)
        for column, title in enumerate(("", "Recommended", "In use")):
            header = QLabel(f"<b>{title}</b>")
            grid.addWidget(header, 0, column)
        self.recommended: dict[str, QLabel] = {}
        self.in_use: dict[str, QLabel] = {}
        for row, (name, label) in enumerate(VALUES, start=1):
            grid.addWidget(QLabel(f"{label}:"), row, 0)
            self.recommended[name], self.in_use[name] = QLabel("…"), QLabel("…")
            grid.addWidget(self.recommended[name], row, 1)
            grid.addWidget(self.in_use[name], row, 2)
        grid.setColumnStretch(3, 1)
        self.apply_recommended_button = QPushButton("Apply &recommended")
        self.apply_recommended_button.setToolTip(
            "Forget your own tuning values: Ollama runs with the recommended ones (it restarts)"
        )
        self.apply_recommended_button.clicked.connect(self.apply_recommended)
        self.apply_recommended_button.setEnabled(False)
        grid.addWidget(self.apply_recommended_button, len(VALUES) + 1, 0, 1, 2, Qt.AlignmentFlag.AlignLeft)
        return box

    def _tune_box(self) -> QGroupBox:
        box = QGroupBox("Tune now: measure Ollama's speed at each thread count")
        layout = QVBoxLayout(box)
        controls = QHBoxLayout()
        runs_label = QLabel("R&uns per thread count:")
        self.runs = QSpinBox()
        self.runs.setRange(*TUNE_RUNS)
        self.runs.setValue(TUNE_RUNS[1])
        runs_label.setBuddy(self.runs)
        self.tune_button = QPushButton("&Tune now")
        self.tune_button.clicked.connect(self.tune_now)
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.progress.setVisible(False)
        for widget in (runs_label, self.runs, self.tune_button):
            controls.addWidget(widget)
        controls.addWidget(self.progress, 1)
        controls.addStretch(0)
        layout.addLayout(controls)
        self.chart = TuneChart()
        layout.addWidget(self.chart)
        winner = QHBoxLayout()
        self.apply_winner_button = QPushButton("Apply the &winner")
        self.apply_winner_button.setEnabled(False)
        self.apply_winner_button.clicked.connect(self.apply_winner)
        self.tune_note = QLabel("")
        self.tune_note.setWordWrap(True)
        winner.addWidget(self.apply_winner_button)
        winner.addWidget(self.tune_note, 1)
        layout.addLayout(winner)
        return box

    # -- reading ----------------------------------------------------------------------------------

    def load(self) -> None:
        if self.context is None:
            return
        # reads no user asked for: an engine restarting meanwhile is no error (the next load reads them again)
        self.context.call(
            "read the hardware", lambda client: client.hardware(), self.show_hardware, failed=lambda _why: None
        )
        self.context.call(
            "read the tuning run", lambda client: client.tune_status(), self.show_tune, failed=lambda _why: None
        )

    def show_hardware(self, doc: Mapping[str, Any]) -> None:
        self.hardware = dict(doc)
        for label, text in machine_lines(doc).items():
            self.machine[label].setText(text)
        machine, in_force = doc.get("for_this_machine") or {}, doc.get("recommended") or {}
        yours = set(in_force.get("from_settings") or [])
        reasons = machine.get("reasons") or {}
        for name, _ in VALUES:
            self.recommended[name].setText(shown(name, machine.get(name)))
            self.recommended[name].setToolTip(str(reasons.get(name, "")))
            mine = name in yours and in_force.get(name) != machine.get(name)
            self.in_use[name].setText(shown(name, in_force.get(name)) + (" (your setting)" if mine else ""))
        self.apply_recommended_button.setEnabled(bool(self.resettable()))

    def resettable(self) -> list[str]:
        """The ``tuning.*`` settings the user set here that differ from the recommendation."""
        machine, in_force = self.hardware.get("for_this_machine") or {}, self.hardware.get("recommended") or {}
        return [
            f"tuning.{name}"
            for name in in_force.get("from_settings") or []
            if in_force.get(name) != machine.get(name) and self.editable.get(f"tuning.{name}", True)
        ]

    def show_tune(self, status: Mapping[str, Any]) -> None:
        state = status.get("state")
        running = state == "running"
        ollama = (self.context.feed.current or {}).get("ollama") if self.context is not None else None
        # unknown until the first stats: offered, and the engine says why if it cannot
        can = ollama_actions(ollama)["tune"] if ollama is not None else Availability(self.context is not None)
        self.tune_button.setEnabled(not running and can.enabled)
        self.tune_button.setToolTip("" if running else can.reason)
        self.progress.setVisible(running)
        if running:
            self._progress(status.get("progress") or {})
        result = status.get("result")
        if result:
            self.chart.show_result(result)
        best = (result or {}).get("best") or {}
        self.apply_winner_button.setEnabled(not running and "num_thread" in best)
        if state == "failed":
            self.tune_note.setText(f"The measurement failed: {status.get('error', 'no reason given')}.")
        elif running:
            self.tune_note.setText("Measuring… Ollama answers other requests more slowly meanwhile.")
        elif "num_thread" in best:
            rows = [
                (int(row["num_thread"]), float(row["tokens_per_s"]))
                for row in (result or {}).get("results") or []
                if "num_thread" in row
            ] or [(int(best["num_thread"]), float(best.get("tokens_per_s", 0)))]
            self.tune_note.setText(summary(rows))
        else:
            self.tune_note.setText("")

    def _progress(self, progress: Mapping[str, Any]) -> None:
        steps = int(progress.get("steps") or 0)
        self.progress.setRange(0, max(steps, 1))
        self.progress.setValue(int(progress.get("step") or 0) if steps else 0)
        self.progress.setFormat(
            f"step %v of %m ({shown('num_thread', progress['num_thread'])})"
            if steps and "num_thread" in progress
            else "starting…"
        )

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        if not self.isVisible():
            return
        if name == "tune_did_progress":
            self.show_tune({"state": "running", "progress": payload})
        elif name == "tune_did_finish":
            self.show_tune(payload)
            self.load()

    # -- acting -----------------------------------------------------------------------------------

    def tune_now(self) -> None:
        if self.context is not None:
            self.tune_button.setEnabled(False)
            runs = self.runs.value()
            self.context.call("start tuning", lambda client: client.tune_start(runs=runs), self.show_tune)

    def apply_recommended(self) -> None:
        self._put(dict.fromkeys(self.resettable()), "the recommended values")

    def apply_winner(self) -> None:
        if self.chart.best is not None:
            self._put({"tuning.num_thread": self.chart.best}, shown("num_thread", self.chart.best))

    def _put(self, changes: dict[str, Any], what: str) -> None:
        if self.context is None or not changes:
            return

        def done(answer: Mapping[str, Any]) -> None:
            results = {change.get("result") for change in (answer.get("changes") or {}).values()}
            self.status_line.setText(f"Saved {what}: " + ", ".join(sorted(str(r) for r in results)) + ".")
            self.load()
            self.settings_changed.emit()

        self.status_line.setText(f"Saving {what}…")
        self.context.call(f"apply {what}", lambda client: client.update_settings(changes), done)
