"""The tray icon and its menu.

The icon shows the engine's state (:func:`desktop.icons.state_of`) from the feed's signals; the tooltip
says the hit rate, the requests, the time saved and Ollama's state. The menu is built again each time it
opens, so it never shows stale numbers: a status line, Copy endpoint URL, Restart Ollama, Pause caching,
Clear cache... (confirmed, with the entry count), Dashboard, Settings..., Open logs folder, Start at login
(checkable), Quit.
Actions that change the engine go through :meth:`desktop.errors.Errors.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMenu, QMessageBox, QSystemTrayIcon

from core.control.client import AsyncControlClient
from desktop import autostart
from desktop.icons import IconState, icon, state_of
from desktop.windows import AppContext, Windows

PAUSE_MISSING = "This version of the engine cannot pause caching"


def _percent(rate: object) -> str:
    return f"{float(rate) * 100:.0f} %" if isinstance(rate, (int, float)) else "–"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:,.1f} h"


class Tray(QObject):
    """The tray icon. :attr:`state` is the :class:`IconState` shown; :attr:`actions` the menu's actions by
    name (``status``, ``copy_url``, ``restart_ollama``, ``pause``, ``clear``, ``dashboard``, ``settings``,
    ``logs``, ``login``, ``quit``), as of the last time the menu was built; :attr:`confirm` the open Clear dialog."""

    def __init__(self, context: AppContext, windows: Windows, quit: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.windows = windows
        self._quit = quit
        self.state = IconState.ENGINE_DOWN
        self.actions: dict[str, QAction] = {}
        self.confirm: QMessageBox | None = None
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon = QSystemTrayIcon(icon(self.state))
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        feed = context.feed
        feed.stats_changed.connect(self.refresh)
        feed.connection_changed.connect(self.refresh)
        context.engine.state_changed.connect(self.refresh)
        context.engine.failed.connect(lambda message: self._notify("Ollacache engine", message))
        context.errors.reported.connect(self._notify)
        self.refresh()
        self.rebuild_menu()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def stats(self) -> dict[str, Any] | None:
        return self.context.feed.stats if self.context.feed.connected else None

    @property
    def url(self) -> str | None:
        return self.context.engine.url

    def refresh(self, *_: object) -> None:
        """Show the state and tooltip of the latest stats."""
        state = state_of(self.context.feed.connected, self.context.feed.stats)
        if state is not self.state:
            self.state = state
            self.icon.setIcon(icon(state))
        self.icon.setToolTip(self.tooltip())

    def tooltip(self) -> str:
        stats = self.stats
        if stats is None:
            engine = self.context.engine.state.value
            return f"Ollacache: engine {'down' if engine != 'starting' else 'starting'}"
        totals = stats.get("totals", {})
        ollama = stats.get("ollama") or {}
        return "\n".join([
            f"Ollacache: {self.state.label}",
            f"Hit rate {_percent(totals.get('hit_rate'))} of {totals.get('requests', 0):,} requests",
            f"Time saved {_duration(totals.get('time_saved_s'))}",
            f"Ollama: {ollama.get('state', 'unknown')}",
        ])

    def status_line(self) -> str:
        stats = self.stats
        if stats is None or self.url is None:
            return f"Ollacache: {self.state.label}"
        address = self.url.removeprefix("http://")
        return f"Serving on {address} · hit rate {_percent(stats.get('totals', {}).get('hit_rate'))}"

    def rebuild_menu(self) -> None:
        """Build the menu from the latest state (called each time it is about to show)."""
        self.menu.clear()
        self.actions = {}
        serving = self.stats is not None and self.url is not None

        def add(name: str, text: str, slot: Callable[[], None] | None, enabled: bool = True) -> QAction:
            action = self.menu.addAction(text)
            if slot is not None:
                action.triggered.connect(slot)
            action.setEnabled(enabled)
            self.actions[name] = action
            return action

        add("status", self.status_line(), None, enabled=False)
        add("copy_url", "Copy endpoint URL", self._copy_url, serving)
        self.menu.addSeparator()
        ollama = (self.stats or {}).get("ollama") or {}
        restartable = bool(ollama.get("managed")) and ollama.get("state") != "attached"
        restart = add("restart_ollama", "Restart Ollama", self._restart_ollama, serving and restartable)
        if serving and not restartable:
            restart.setToolTip("Ollacache did not start this Ollama, so it cannot restart it"
                               f" ({ollama.get('reason') or ollama.get('state', 'unknown')})")
        pause = add("pause", "Pause caching", self._toggle_pause, serving and self._can_pause())
        pause.setCheckable(True)
        pause.setChecked(bool(self.stats and self.stats.get("paused")))
        if not self._can_pause():
            pause.setToolTip(PAUSE_MISSING)
        entries = (self.stats or {}).get("store", {}).get("entries", 0)
        add("clear", f"Clear cache ({entries:,} entries)…" if serving else "Clear cache…", self._ask_clear, serving)
        self.menu.addSeparator()
        add("dashboard", "Dashboard", self.windows.show_dashboard)
        add("settings", "Settings…", self.windows.show_settings)
        add("logs", "Open logs folder", self._open_logs)
        login = add("login", "Start at login", self._toggle_login)
        login.setCheckable(True)
        login.setChecked(autostart.is_enabled())
        self.menu.addSeparator()
        add("quit", "Quit Ollacache", self._quit)
        self.menu.setToolTipsVisible(True)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.windows.show_dashboard()

    def _notify(self, title: str, message: str) -> None:
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning)

    def _copy_url(self) -> None:
        if self.url is not None:
            QGuiApplication.clipboard().setText(self.url)

    def _call(self, what: str, call: Callable[[AsyncControlClient], Any]) -> None:
        self.context.call(what, call)

    def _toggle_login(self) -> None:
        """Start at login on or off (keeping "start hidden" as it was); a failure is said in the one place."""
        try:
            if autostart.is_enabled():
                autostart.disable()
            else:
                autostart.enable(hidden=autostart.starts_hidden())
        except autostart.AutostartError as error:
            self.context.errors.report("Could not change start at login", str(error))

    def _restart_ollama(self) -> None:
        self._call("restart Ollama", lambda client: client.restart_ollama())

    @staticmethod
    def _can_pause() -> bool:
        return hasattr(AsyncControlClient, "pause") and hasattr(AsyncControlClient, "resume")

    def _toggle_pause(self) -> None:
        if self.stats and self.stats.get("paused"):
            self._call("resume caching", lambda client: client.resume())
        else:
            self._call("pause caching", lambda client: client.pause())

    def _ask_clear(self) -> None:
        entries = (self.stats or {}).get("store", {}).get("entries", 0)
        box = QMessageBox(QMessageBox.Icon.Question, "Clear the cache",
                          f"Remove all {entries:,} cached {'entry' if entries == 1 else 'entries'}?\n"
                          "Their next requests go to Ollama again.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Clear")
        box.finished.connect(lambda _result: self._cleared_confirmed(box))
        self.confirm = box
        box.open()  # not exec(): a nested event loop would stall the asyncio tasks

    def _cleared_confirmed(self, box: QMessageBox) -> None:
        self.confirm = None
        box.deleteLater()
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            self._call("clear the cache", lambda client: client.clear())

    def log_folder(self) -> Path:
        """Where the engine's and Ollama's logs are."""
        return self.context.engine.log_path.parent

    def _open_logs(self) -> None:
        folder = self.log_folder()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
