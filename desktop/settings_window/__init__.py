"""The tray app's Settings window, built from the engine's settings table (``GET /-/settings``).

``window`` holds the window and its factory for the app, ``fields`` one field per setting by kind.
"""

from desktop.settings_window.window import SettingsWindow, build_settings_window

__all__ = ["SettingsWindow", "build_settings_window"]
