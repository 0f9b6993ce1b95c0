"""The app's windows, and how the app is given them.

The app knows its windows only as factories: a :data:`WindowFactory` takes the :class:`AppContext` (the
settings, the engine, the feed, the error reporter) and returns a ``QWidget``; it is called once, the
first time the window is shown. :class:`Windows` holds the dashboard's and the settings' factories and
shows, raises and activates the window. :func:`placeholder` stands in for a
window the app was not given (the tray's own tests build no dashboard).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.config.settings import Settings
from core.control.client import AsyncControlClient, ControlError
from desktop.engine_process import EngineProcess
from desktop.errors import Errors
from desktop.feed import Feed


@dataclass(frozen=True)
class AppContext:
    """What a window may use: read :attr:`feed` (signals and the latest stats), call the engine through
    ``engine.client()`` (an :class:`~core.control.client.AsyncControlClient`, or None while it is down)
    inside ``errors.run(...)``."""

    settings: Settings
    engine: EngineProcess
    feed: Feed
    errors: Errors

    def call(
        self,
        what: str,
        call: Callable[[AsyncControlClient], Awaitable[Any]],
        done: Callable[[Any], None] | None = None,
        failed: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``call`` with a control client on the event loop; ``done`` gets the result. A failure is reported
        as "Could not WHAT" (through :attr:`errors`), or, for a read that no user asked for, given to ``failed``
        to say where its answer would have been."""

        async def run() -> Any:
            client = self.engine.client()
            if client is None:
                if failed is not None:
                    return _Failed("the engine is not running")
                raise RuntimeError("the engine is not running")
            async with client:
                if failed is None:
                    return await call(client)
                try:
                    return await call(client)
                except ControlError as error:
                    return _Failed(str(error))

        def finish(result: Any) -> None:
            if isinstance(result, _Failed):
                assert failed is not None
                failed(result.message)
            elif done is not None:
                done(result)

        self.errors.run(what, run(), finish)


@dataclass(frozen=True)
class _Failed:
    message: str


WindowFactory = Callable[[AppContext], QWidget]


def placeholder(title: str) -> WindowFactory:
    """A window that only says its ``title`` (for a window the app was not given)."""

    def build(context: AppContext) -> QWidget:
        window = QWidget()
        window.setWindowTitle(f"Ollacache: {title}")
        layout = QVBoxLayout(window)
        label = QLabel(title)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(label)
        window.resize(480, 320)
        return window

    return build


class _Closing(QObject):
    """Tells when a watched window is closed."""

    closed = Signal()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close:
            self.closed.emit()
        return False


class Windows(QObject):
    """The dashboard and settings windows, built on first show. ``dashboard_closed`` is emitted when the
    dashboard window is closed (the app quits then when there is no tray)."""

    dashboard_closed = Signal()

    def __init__(
        self, context: AppContext, dashboard: WindowFactory, settings: WindowFactory, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._factories = {"dashboard": dashboard, "settings": settings}
        self._built: dict[str, QWidget] = {}
        self._closing = _Closing(self)
        self._closing.closed.connect(self.dashboard_closed)

    def window(self, name: str) -> QWidget:
        if name not in self._built:
            window = self._factories[name](self.context)
            if name == "dashboard":
                window.installEventFilter(self._closing)
            self._built[name] = window
        return self._built[name]

    def built(self, name: str) -> QWidget | None:
        return self._built.get(name)

    def show(self, name: str) -> QWidget:
        """Show the window (building it the first time), bring it forward and give it the focus."""
        window = self.window(name)
        if window.isMinimized():
            window.showNormal()
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def show_dashboard(self) -> QWidget:
        return self.show("dashboard")

    def show_settings(self) -> QWidget:
        return self.show("settings")

    def close_all(self) -> None:
        for window in self._built.values():
            window.removeEventFilter(self._closing)
            window.close()
            window.deleteLater()
        self._built.clear()
