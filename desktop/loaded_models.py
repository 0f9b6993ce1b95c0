"""The tray menu's Loaded models submenu: Ollama's models in memory, each with Unload.

The list is not known synchronously: :meth:`LoadedModels.fetch` asks the engine (``GET /-/ollama/models``)
when the menu is about to show and when an Ollama event arrives, and the submenu is filled again when the
answer comes (until then it shows the last answer, "Asking Ollama…" before the first). An Ollama that is not
running is not asked: the submenu says why there is nothing ("Ollama is not installed"). A failed question is
said inside the submenu ("Ollama is unreachable", the reason as its tooltip), never as an error: it is no
action of the user's. Unload goes through the app's one error reporter and asks for the list again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from core.control.client import ControlError, LoadedModel
from desktop.availability import ollama_answers
from desktop.windows import AppContext


def _size(size: object) -> str:
    if not isinstance(size, int) or size <= 0:
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f" · {size / scale:,.1f} {unit}"
    return f" · {size} B"


class LoadedModels(QObject):
    """:attr:`menu` the submenu, :attr:`unload_actions` its actions by model name, :attr:`models` the last
    answer (None before one), :attr:`models_error` why the last question failed."""

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.menu = QMenu("Loaded models")
        self.menu.setToolTipsVisible(True)
        self.models: list[LoadedModel] | None = None
        self.models_error: str | None = None
        self.unload_actions: dict[str, QAction] = {}
        self._fetching = False
        self._fetch_again = False
        self._absent: str | None = None  # why no Ollama is there to ask ("Ollama is not installed")

    def fetch(self, ollama: Mapping[str, Any] | None = None) -> None:
        """Ask the engine for Ollama's loaded models (``ollama``: its state, when an event brought a fresher one
        than the last stats); the submenu is filled again when it answers. One question at a time: asked again
        meanwhile, it asks once more after the answer."""
        if self.context.engine.client() is None:
            return
        ollama = ollama or (self.context.feed.current or {}).get("ollama")
        if isinstance(ollama, Mapping) and not ollama_answers(ollama):
            self.models, self.models_error = [], None
            self._absent = (
                "Ollama is not installed" if ollama.get("state") == "not_installed" else "Ollama is not running"
            )
            self.fill()
            return
        self._absent = None
        if self._fetching:
            self._fetch_again = True
            return
        self._fetching = True

        async def fetch() -> list[LoadedModel] | str:
            client = self.context.engine.client()
            if client is None:
                return "the engine is not running"
            try:
                async with client:
                    return await client.ollama_models()
            except ControlError as error:  # said in the submenu: it is no action of the user's
                return str(error)
            finally:
                self._fetching = False

        self.context.errors.run("list Ollama's loaded models", fetch(), self._models_arrived)

    def _models_arrived(self, answer: list[LoadedModel] | str) -> None:
        if isinstance(answer, str):
            self.models_error = answer
        else:
            self.models, self.models_error = answer, None
        self.fill()
        if self._fetch_again:
            self._fetch_again = False
            self.fetch()

    def fill(self) -> None:
        """The Loaded models submenu from the last answer: each model with Unload, or why there is none."""
        self.menu.clear()
        self.unload_actions = {}
        if self.models_error is not None:
            note = self.menu.addAction("Ollama is unreachable")
            note.setToolTip(self.models_error)
            note.setEnabled(False)
            return
        if self.models is None:
            self.menu.addAction("Asking Ollama…").setEnabled(False)
            return
        if self._absent is not None:
            self.menu.addAction(self._absent).setEnabled(False)
            return
        if not self.models:
            self.menu.addAction("No model loaded").setEnabled(False)
            return
        for model in self.models:
            name = str(model.get("name") or model.get("model") or "?")
            action = self.menu.addAction(f"Unload {name}{_size(model.get('size'))}")
            action.triggered.connect(lambda _checked=False, name=name: self._unload(name))
            self.unload_actions[name] = action

    def _unload(self, name: str) -> None:
        self.context.call(f"unload {name}", lambda client: client.unload(name), lambda _: self.fetch())
