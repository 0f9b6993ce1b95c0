"""The tray app's Settings window, built from the engine's settings table (``GET /-/settings``).

``window`` holds the window and its factory for the app, ``fields`` one field per setting by kind,
``applying`` the check as typed and Apply, ``restart`` Restart engine now, ``login`` Start at login,
``performance`` the Performance tab's panel and ``tune_chart`` its chart of a tuning run.
"""

from desktop.settings_window.window import SettingsWindow, build_settings_window

__all__ = ["SettingsWindow", "build_settings_window"]
