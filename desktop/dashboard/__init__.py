"""The dashboard window: cards, live charts, recent requests, per-model and per-client breakdown and the
Ollama panel, fed with the engine's own documents (``/-/stats``, finished-request events, Ollama's state)
through slots the app shell connects to its feed. Importing it guards against PySide6's None leak."""

from desktop.dashboard.qtfix import guard_none

guard_none()

from desktop.dashboard.window import DashboardWindow  # noqa: E402 - after the guard

__all__ = ["DashboardWindow"]
