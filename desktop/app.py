"""The tray app, assembled: the qasync event loop, one instance per user, the engine, the feed, the tray.

Nothing here does work of its own (each part lives in its module); :class:`TrayApp` wires the parts
together and :func:`main` runs it. Quit (the menu), SIGTERM and SIGINT end it the same way: the feed
stops, the engine the app started is stopped (one it attached to keeps running), the loop ends, exit 0.
Where no system tray exists, the dashboard opens instead, and closing it quits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from core.config.settings import SettingError, Settings, load
from core.engine.startup import log_dir
from desktop import qtlog
from desktop.engine_process import EngineProcess
from desktop.errors import Errors
from desktop.event_loop import EventLoop
from desktop.feed import Feed
from desktop.instance import SingleInstance
from desktop.notifications import NOTIFIED_EVENTS, Notifier
from desktop.tray import Tray
from desktop.windows import AppContext, WindowFactory, Windows, placeholder

EXIT_USAGE = 2
TIMINGS_LOG = "desktop.log"  # where the moments the icon and the dashboard were shown are written


def announce(log_directory: Path | None, what: str) -> None:
    """Write ``WHAT shown N s after the process started (at UNIX_TIME)`` to ``desktop.log``: how long a
    user waited for the icon or the window (the tray bench reads it). Never fails."""
    now = time.time()
    try:
        import psutil

        since = f"{now - psutil.Process().create_time():.3f} s after the process started"
    except Exception:  # noqa: BLE001 - a missing figure, not a reason to fail
        since = "at an unknown time after the process started"
    if log_directory is None:
        return
    with contextlib.suppress(OSError):
        with (log_directory / TIMINGS_LOG).open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} timing: {what} shown {since} (at {now:.3f})\n")


class TrayApp(QObject):
    """Everything the running app is. Give it the windows as factories (see :mod:`desktop.windows`):
    ``TrayApp(settings, dashboard=build_dashboard, settings_window=build_settings)``. ``start()`` starts
    the engine and the feed and shows the tray (or the dashboard, with no tray); ``quit()`` ends it all,
    and ``finished`` is emitted once it has."""

    finished = Signal()

    def __init__(
        self,
        settings: Settings,
        *,
        dashboard: WindowFactory | None = None,
        settings_window: WindowFactory | None = None,
        instance: SingleInstance | None = None,
        log_directory: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.log_directory = log_directory
        self.errors = Errors(self)
        self.engine = EngineProcess(settings, self)
        self.feed = Feed(settings, self.engine.wait_ready, self)
        self.context = AppContext(settings, self.engine, self.feed, self.errors)
        self.windows = Windows(
            self.context, dashboard or placeholder("Dashboard"), settings_window or placeholder("Settings"), self
        )
        self.tray = Tray(self.context, self.windows, self.quit, self)
        self.notifier = Notifier(self.tray.icon)  # Ollama crashing, giving up, not found; tuning runs ending
        self.feed.on(NOTIFIED_EVENTS, self.notifier.event)
        self.feed.connection_changed.connect(self._connected)
        self.feed.stats_changed.connect(self._first_numbers)
        self.instance = instance
        if instance is not None:
            instance.activated.connect(self.show_dashboard)
        self.has_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self._quitting: asyncio.Task[None] | None = None

    def start(self, show_dashboard: bool = False) -> None:
        """Show the icon (first: it is what a user waits for), start the engine and the feed, and open the
        dashboard when asked (a user's launch) or when there is no tray to live in (then closing it quits)."""
        self.tray.show()  # also without a tray: Qt adds the icon if one appears later
        announce(self.log_directory, "tray icon")
        self.engine.start()
        self.feed.start()
        if not self.has_tray:
            self.windows.dashboard_closed.connect(self.quit)
        if show_dashboard or not self.has_tray:
            self.show_dashboard()

    def show_dashboard(self) -> None:
        self.windows.show_dashboard()
        announce(self.log_directory, "dashboard")

    def _first_numbers(self, _stats: object) -> None:
        """The first live numbers a user sees (the tray bench times them from launch)."""
        self.feed.stats_changed.disconnect(self._first_numbers)
        announce(self.log_directory, "live numbers")

    def _connected(self, connected: bool) -> None:
        """A store that failed before the feed began is news too (later failures come as events)."""
        if connected:
            self.context.call(
                "read the engine's health",
                lambda client: client.health(),
                lambda health: self.notifier.store(health.get("store") or {}),
            )

    def quit(self) -> None:
        """Begin shutting down (idempotent); ``finished`` tells when it is done."""
        if self._quitting is None:
            self._quitting = asyncio.ensure_future(self.shutdown())

    async def shutdown(self) -> None:
        try:
            self.tray.hide()
            await self.feed.stop()  # first: no event may start a call once the calls are drained
            await self.errors.drain()
            await self.engine.stop()
            self.windows.close_all()
            if self.instance is not None:
                self.instance.release()
        finally:
            self.finished.emit()


def _windows() -> tuple[WindowFactory, WindowFactory]:
    """The dashboard and settings windows the app shows, imported the first time each is opened (not
    before the icon is shown)."""

    def dashboard(context: AppContext) -> QWidget:
        from desktop.dashboard_window import build_dashboard

        return build_dashboard(context)

    def settings_window(context: AppContext) -> QWidget:
        from desktop.settings_window import build_settings_window

        return build_settings_window(context)

    return dashboard, settings_window


def arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ollacache tray", description="The Ollacache tray app.")
    parser.add_argument(
        "--hidden",
        action="store_true",
        help="start in the tray only (as at login with 'start hidden'); otherwise the dashboard opens too",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tray app until Quit, SIGTERM or SIGINT; its exit code. ``argv`` without the program name."""
    args = arguments(sys.argv[1:] if argv is None else argv)
    try:
        settings = load()
    except SettingError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_USAGE
    qtlog.install(log_dir(settings))
    qt = QApplication(["ollacache"])  # the window class the desktop groups its windows by
    qt.setDesktopFileName("ollacache")
    qt.setApplicationName("Ollacache")
    qt.setQuitOnLastWindowClosed(False)
    instance = SingleInstance(settings.config_dir)
    if not instance.claim():
        return 0  # the running instance comes forward
    loop = EventLoop(qt)
    asyncio.set_event_loop(loop)
    dashboard, settings_window = _windows()
    app = TrayApp(
        settings,
        dashboard=dashboard,
        settings_window=settings_window,
        instance=instance,
        log_directory=log_dir(settings),
    )
    app.finished.connect(loop.stop)
    if sys.platform != "win32":
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, app.quit)
    with loop:
        loop.call_soon(app.start, not args.hidden)
        loop.run_forever()
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(asyncio.sleep(0))  # let the last callbacks finish
    return 0
