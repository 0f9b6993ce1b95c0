"""The dashboard window: cards, live charts, recent requests, per-model and per-client breakdown and the
Ollama panel, fed with the engine's own documents (``/-/stats``, finished-request events, Ollama's state)
through slots the app shell connects to its feed (see :mod:`desktop.dashboard_window`)."""

from desktop.dashboard.window import DashboardWindow

__all__ = ["DashboardWindow"]
