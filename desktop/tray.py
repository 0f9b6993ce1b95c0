"""The tray icon and its menu.

The icon shows the engine's state (:func:`desktop.icons.state_of`) from the feed's signals; the tooltip
says the hit rate, the requests, the time saved and Ollama's state (worded by :mod:`desktop.tray_status`,
as is the menu's status line). The menu is built again each time it opens, so it never shows stale
numbers: a status line (with a tuning run's progress while one runs), Copy endpoint URL, Loaded models
(each with Unload), Start or Stop Ollama, Restart Ollama, Pause caching, Clear cache... (confirmed, with
the entry count), Tune now... (asks for 1 to 3 runs), Dashboard, Settings..., Open logs folder, Start at
login (checkable), Quit.
The Loaded models submenu is :mod:`desktop.loaded_models`'s. Actions that change the engine go through
:meth:`desktop.errors.Errors.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QInputDialog, QMenu, QMessageBox, QSystemTrayIcon

from core.control.client import AsyncControlClient
from core.observe.published import OLLAMA_EVENTS
from desktop import autostart, tray_status
from desktop.availability import ActionName, ollama_actions
from desktop.clear_cache import ClearCache
from desktop.icons import IconState, icon, state_of
from desktop.loaded_models import LoadedModels
from desktop.path_box import show_path
from desktop.windows import AppContext, Windows

TUNE_RUNS = (1, 3)  # the measured runs per thread count a user may ask for from the menu


STILL_NOT_FOUND = "Ollama is still not installed. Install it, then choose Detect Ollama again."


class Tray(QObject):
    """The tray icon. :attr:`state` is the :class:`IconState` shown; :attr:`actions` the menu's actions by
    name (``status``, ``copy_url``, ``models``, ``start_ollama`` or ``stop_ollama``, ``restart_ollama``,
    ``pause``, ``clear``, ``tune``, ``dashboard``, ``settings``, ``logs``, ``login``, ``quit``), as of the last
    time the menu was built; :attr:`models_menu` the Loaded models submenu, with :attr:`unload_actions` by
    model name (both kept by :attr:`loaded`); :attr:`confirm` the open Clear dialog, :attr:`tune_dialog` the
    open Tune now dialog."""

    def __init__(
        self, context: AppContext, windows: Windows, quit: Callable[[], None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.windows = windows
        self._quit = quit
        self.state = IconState.ENGINE_DOWN
        self.actions: dict[str, QAction] = {}
        self.clearing = ClearCache(context)
        self.tune_dialog: QInputDialog | None = None
        self.logs_box: QMessageBox | None = None  # the logs folder's path, where no file manager opened it
        self.loaded = LoadedModels(context)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.menu.aboutToShow.connect(self.loaded.fetch)
        self.icon = QSystemTrayIcon(icon(self.state))
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        feed = context.feed
        feed.stats_changed.connect(self.refresh)
        feed.connection_changed.connect(self.refresh)
        feed.on(OLLAMA_EVENTS, self._event)
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
        return self.context.feed.current

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
        status = self.actions.get("status")
        if status is not None:  # an open menu follows a tuning run's progress
            status.setText(self.status_line())

    def tooltip(self) -> str:
        return tray_status.tooltip(self.stats, self.state, self.context.engine.state.value)

    def status_line(self) -> str:
        return tray_status.status_line(self.stats, self.url, self.state)

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
        self.actions["models"] = self.menu.addMenu(self.loaded.menu)
        self.actions["models"].setEnabled(serving)
        self.loaded.fill()
        ollama = (self.stats or {}).get("ollama")
        can = ollama_actions(ollama if serving else None, self.loaded.models)

        def offer(name: str, text: str, slot: Callable[[], None], what: ActionName) -> QAction:
            action = add(name, text, slot, can[what].enabled)
            action.setToolTip(can[what].reason)
            return action

        state = (ollama or {}).get("state")
        if state == "not_installed":
            offer("detect_ollama", "Detect Ollama again", self._detect_ollama, "detect")
        elif state in ("running", "attached", "starting", "unhealthy", "backing-off") and not (ollama or {}).get(
            "held"
        ):
            offer("stop_ollama", "Stop Ollama", self._stop_ollama, "stop")
        else:
            offer("start_ollama", "Start Ollama", self._start_ollama, "start")
        offer("restart_ollama", "Restart Ollama", self._restart_ollama, "restart")
        pause = add("pause", "Pause caching", self._toggle_pause, serving)
        pause.setCheckable(True)
        pause.setChecked(bool(self.stats and self.stats.get("paused")))
        entries = self.clearing.entries()
        add("clear", f"Clear cache ({entries:,} entries)…" if serving else "Clear cache…", self._ask_clear, serving)
        tuning = tray_status.tune_progress((self.stats or {}).get("tune")) is not None
        tune = add("tune", "Tune now…", self._ask_tune, can["tune"].enabled and not tuning)
        tune.setToolTip("A measurement is running: its progress is on the first line" if tuning else can["tune"].reason)
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

    def _notify(
        self, title: str, message: str, kind: QSystemTrayIcon.MessageIcon = QSystemTrayIcon.MessageIcon.Warning
    ) -> None:
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, message, kind)

    def _copy_url(self) -> None:
        if self.url is not None:
            QGuiApplication.clipboard().setText(self.url)
            self._tell(
                "Address copied", f"{self.url} is on the clipboard: paste it where your tool asks for Ollama's address."
            )

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

    def _start_ollama(self) -> None:
        self._call("start Ollama", lambda client: client.start_ollama())

    def _detect_ollama(self) -> None:
        """Look for Ollama again; "still not found" is an answer, told as information, not as an error."""
        self.context.call(
            "look for Ollama again",
            lambda client: client.start_ollama(),
            failed=lambda _why: self._tell("Ollama was not found", STILL_NOT_FOUND),
        )

    def _tell(self, title: str, message: str) -> None:
        """A message that answers the user, not a warning."""
        self._notify(title, message, QSystemTrayIcon.MessageIcon.Information)

    def _stop_ollama(self) -> None:
        self._call("stop Ollama", lambda client: client.stop_ollama())

    def _event(self, name: str, data: dict[str, Any]) -> None:
        # a start, an exit, a restart: the loaded models may have changed
        self.loaded.fetch(data.get("ollama") if isinstance(data.get("ollama"), dict) else None)

    @property
    def models_menu(self) -> QMenu:
        return self.loaded.menu

    @property
    def unload_actions(self) -> dict[str, QAction]:
        return self.loaded.unload_actions

    def _ask_tune(self) -> None:
        dialog = QInputDialog()
        dialog.setWindowTitle("Tune now")
        dialog.setLabelText(
            "Measure Ollama's speed at each candidate thread count.\n"
            "Runs per thread count (more is steadier, and slower):"
        )
        dialog.setInputMode(QInputDialog.InputMode.IntInput)
        dialog.setIntRange(*TUNE_RUNS)
        dialog.setIntValue(TUNE_RUNS[1])
        dialog.setOkButtonText("Start")
        dialog.finished.connect(lambda result: self._tune_confirmed(dialog, result))
        self.tune_dialog = dialog
        dialog.open()  # not exec(), as for Clear

    def _tune_confirmed(self, dialog: QInputDialog, result: int) -> None:
        self.tune_dialog = None
        dialog.deleteLater()
        if result == QDialog.DialogCode.Accepted.value:
            runs = dialog.intValue()
            self._call("start tuning", lambda client: client.tune_start(runs=runs))

    def _toggle_pause(self) -> None:
        if self.stats and self.stats.get("paused"):
            self._call("resume caching", lambda client: client.resume())
        else:
            self._call("pause caching", lambda client: client.pause())

    def _ask_clear(self) -> None:
        self.clearing.ask()

    @property
    def confirm(self) -> QMessageBox | None:
        return self.clearing.box

    def log_folder(self) -> Path:
        """Where the engine's and Ollama's logs are."""
        return self.context.engine.log_path.parent

    def _open_logs(self) -> None:
        """Open the folder in the file manager; where none opens, show its path to copy instead."""
        folder = self.log_folder()
        folder.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.logs_box = show_path("Ollacache's logs", "No file manager could open the logs folder. It is:", folder)
