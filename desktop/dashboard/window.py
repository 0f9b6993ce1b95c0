"""The dashboard window: Overview (cards and live charts), Requests, Breakdown, Ollama and Cache tabs.

It never calls the engine: the app shell connects its feed's signals to the slots here and this window's
signals to the engine's control calls.

Slots: ``show_stats(dict)`` (a /-/stats document), ``add_request(dict)`` (a finished-request event),
``show_ollama(dict)`` (Ollama's state, /-/health's "ollama", optionally with "models"),
``show_models(list)`` (/api/ps's models), ``show_log(list)`` (Ollama's last log lines) and
``set_endpoint(str)`` (the address tools should use, for the empty states), ``show_warm(dict)`` (a warm-up's
status) and ``show_warm_error(str)``.
Signals: ``unload_requested(str)``, ``restart_ollama_requested()``, ``detect_ollama_requested()``,
``resume_requested()`` (the paused banner's Resume), ``log_requested()``,
``warm_requested(list, int)`` (checked warm-up requests and the concurrency).

The window remembers its size and tab in QSettings (organisation "Ollacache", application "Ollacache").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QSettings, Signal, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from desktop.dashboard.banners import Banners
from desktop.dashboard.breakdown import Breakdown
from desktop.dashboard.cache_tab import CacheTab
from desktop.dashboard.cards import Cards
from desktop.dashboard.live import LiveCharts
from desktop.dashboard.models_tab import ModelsTab
from desktop.dashboard.ollama_panel import OllamaPanel
from desktop.dashboard.requests import RequestsTable

ORGANISATION = APPLICATION = "Ollacache"


class DashboardWindow(QMainWindow):
    """What the cache does, live. See the module docstring for its slots and signals."""

    unload_requested = Signal(str)
    models_requested = Signal()
    restart_ollama_requested = Signal()
    detect_ollama_requested = Signal()
    resume_requested = Signal()
    log_requested = Signal()
    warm_requested = Signal(list, int)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Ollacache")
        self.settings = settings or QSettings(ORGANISATION, APPLICATION)
        self.banners = Banners()
        self.banners.resume_requested.connect(self.resume_requested)
        self.cards = Cards()
        self.cards.welcome.detect_requested.connect(self.detect_ollama_requested)
        self.charts = LiveCharts()
        self.requests = RequestsTable()
        self.breakdown = Breakdown()
        self.ollama = OllamaPanel()
        self.ollama.unload_requested.connect(self.unload_requested)
        self.ollama.restart_requested.connect(self.restart_ollama_requested)
        self.ollama.log_requested.connect(self.log_requested)
        self.models = ModelsTab()
        self.models.unload_requested.connect(self.unload_requested)
        self.models.refresh_requested.connect(self.models_requested)
        self.cache = CacheTab()
        self.cache.warm_requested.connect(self.warm_requested)

        overview = QWidget()
        column = QVBoxLayout(overview)
        column.addWidget(self.cards)
        column.addWidget(self.charts, 1)
        scroll = QScrollArea()  # a small window scrolls instead of squeezing the charts
        scroll.setWidget(overview)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        overview.setMinimumHeight(600)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for title, widget in (
            ("&Overview", scroll),
            ("&Requests", self.requests),
            ("&Breakdown", self.breakdown),
            ("Olla&ma", self.ollama),
            ("Model&s", self.models),
            ("C&ache", self.cache),
        ):
            self.tabs.addTab(widget, title)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banners)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        for number in range(self.tabs.count()):  # Ctrl+1..6 as in a browser; Alt+letter from the titles
            QShortcut(QKeySequence(f"Ctrl+{number + 1}"), self, lambda n=number: self.tabs.setCurrentIndex(n))
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        available = self.screen().availableGeometry()  # a small screen gets a window that fits on it
        self.resize(
            min(1100, available.width() * 9 // 10), min(800, available.height() * 9 // 10)
        )  # the Models tab whole
        self._restore()

    def _restore(self) -> None:
        geometry = self.settings.value("dashboard/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        tab = self.settings.value("dashboard/tab", 0)
        try:
            self.tabs.setCurrentIndex(min(max(int(tab), 0), self.tabs.count() - 1))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            pass
        minutes = self.settings.value("dashboard/window_min", 5)
        try:
            self.charts.set_window_minutes(int(minutes))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            pass

    def save_state(self) -> None:
        self.settings.setValue("dashboard/geometry", self.saveGeometry())
        self.settings.setValue("dashboard/tab", self.tabs.currentIndex())
        self.settings.setValue("dashboard/window_min", int(self.charts.window.currentData()) // 60)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        super().closeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and self._last_ollama is not None:
            self.show_ollama(self._last_ollama)  # state colours follow a light/dark switch
        super().changeEvent(event)

    _last_ollama: Mapping[str, Any] | None = None

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        self.banners.show_stats(snapshot)
        self.models.show_stats(snapshot)
        self.cards.show_stats(snapshot)
        self.charts.show_stats(snapshot)
        self.breakdown.show_stats(snapshot)
        self.cache.show_stats(snapshot)
        if isinstance(snapshot.get("ollama"), Mapping):
            self.show_ollama(snapshot["ollama"])

    @Slot(dict)
    def add_request(self, event: Mapping[str, Any]) -> None:
        self.requests.add_request(event)

    def add_requests(self, events: list[Mapping[str, Any]], running: bool = False) -> None:
        self.requests.add_requests(events, running)

    @Slot(dict)
    def show_ollama(self, state: Mapping[str, Any]) -> None:
        self._last_ollama = state
        self.cards.show_ollama(state)
        self.ollama.show_ollama(state)
        self.models.show_ollama(state)

    @Slot(list)
    def show_models(self, models: list[Mapping[str, Any]]) -> None:
        self.ollama.show_models(models)
        self.models.show_loaded(models)

    @Slot(list)
    def show_log(self, lines: Iterable[str]) -> None:
        self.ollama.show_log(lines)

    @Slot(str)
    def set_endpoint(self, url: str) -> None:
        self.cards.set_endpoint(url)
        self.requests.set_endpoint(url)

    @Slot(dict)
    def show_warm(self, status: Mapping[str, Any]) -> None:
        self.cache.show_warm(status)

    @Slot(str)
    def show_warm_error(self, message: str) -> None:
        self.cache.show_warm_error(message)
