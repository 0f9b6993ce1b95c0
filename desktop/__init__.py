"""Ollacache tray app (PySide6 + qasync). It talks to the engine only through the HTTP control API."""
