"""The cards at the top of the dashboard: hit rate, requests per minute, time saved, tokens saved, the cache's
entries and size, and Ollama's state, each a title, a large value and a line saying what it means; above them
the first run's welcome, until the cache holds its first answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from desktop.availability import not_ollama
from desktop.dashboard import format as fmt
from desktop.dashboard.welcome import Welcome

TONE_HUES = {"good": 130, "busy": 35, "bad": 0}


def tone_colour(widget: QWidget, tone: str) -> QColor:
    """A colour for a state's tone that reads on the widget's palette: darker on light, lighter on dark."""
    text = widget.palette().color(QPalette.ColorRole.WindowText)
    if tone not in TONE_HUES:
        return text
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return QColor.fromHsl(TONE_HUES[tone], 180, 160 if dark else 80)


class Card(QFrame):
    """One figure: a title, its value in a large font and a detail line (which wraps)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.title = QLabel(title)
        self.value = QLabel("–")
        self.detail = QLabel("")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.8)
        big.setBold(True)
        self.value.setFont(big)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setWordWrap(True)
        self.detail.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        for label in (self.title, self.value, self.detail):
            layout.addWidget(label)
        layout.addStretch(1)
        self.setAccessibleName(title)

    def show_value(self, value: str, detail: str = "") -> None:
        self.value.setText(value)
        self.detail.setText(detail)
        self.setAccessibleDescription(f"{value}. {detail}")


class Cards(QWidget):
    """The six cards, three a row; `show_stats` fills them from a /-/stats document."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.endpoint: str | None = None  # the proxy's address, once the engine has told it
        self.takeover = False
        self.seen_requests = False
        self.hit_rate = Card("Hit rate")
        self.rate = Card("Requests per minute")
        self.time_saved = Card("Time saved")
        self.tokens_saved = Card("Tokens saved")
        self.cache = Card("Cache")
        self.ollama = Card("Ollama")
        self.welcome = Welcome()  # until the first answer is stored: what to do, across the whole row
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.welcome, 0, 0, 1, 3)
        for index, card in enumerate(self.all()):
            grid.addWidget(card, 1 + index // 3, index % 3)
        self.cache.show_value("–", "Waiting for the engine…")
        self.ollama.show_value("? Unknown", "Waiting for the engine…")
        self.show_empty()

    def all(self) -> list[Card]:
        return [self.hit_rate, self.rate, self.time_saved, self.tokens_saved, self.cache, self.ollama]

    def set_endpoint(self, url: str) -> None:
        self.endpoint = url
        self.welcome.set_address(url, self.takeover)

    def show_empty(self) -> None:
        """Before any request: the cards say what they will show."""
        self.hit_rate.show_value("–", "Shows once a prompt is asked a second time.")
        self.rate.show_value("0.0 /min", "Requests appear here as your tools send them.")
        self.time_saved.show_value(fmt.seconds(0), "Time Ollama would have spent on repeated prompts.")
        self.tokens_saved.show_value("0", "Tokens Ollama did not have to generate again.")

    @Slot(dict)
    def show_stats(self, snapshot: Mapping[str, Any]) -> None:
        totals = snapshot.get("totals") or {}
        requests = int(totals.get("requests") or 0)
        hits, misses = int(totals.get("hits") or 0), int(totals.get("misses") or 0)
        shared = int(totals.get("shared") or 0)  # answered by following an identical request in flight
        minute = (snapshot.get("rates") or {}).get("1m") or {}
        self.seen_requests = requests > 0
        takeover = bool((snapshot.get("takeover") or {}).get("on"))
        if takeover != self.takeover and self.endpoint is not None:
            self.takeover = takeover
            self.welcome.set_address(self.endpoint, takeover)
        if requests == 0:
            self.show_empty()
        else:
            lookups = hits + shared + misses
            counted = [
                fmt.plural(hits, "hit"),
                *([f"{fmt.count(shared)} shared"] if shared else []),
                fmt.plural(misses, "miss", "misses"),
            ]
            self.hit_rate.show_value(
                fmt.percent(totals.get("hit_rate")) if lookups else "–",
                ", ".join(counted) if lookups else f"{fmt.plural(requests, 'request')}, none cacheable yet",
            )
            self.rate.show_value(
                fmt.per_minute(minute.get("requests_per_s")), f"{fmt.plural(requests, 'request')} in total"
            )
            self.time_saved.show_value(
                fmt.seconds(totals.get("time_saved_s") or 0.0), "Time Ollama would have spent on these answers."
            )
            self.tokens_saved.show_value(
                fmt.count(totals.get("tokens_saved") or 0), "Tokens answered from the cache instead of generated."
            )
        store = snapshot.get("store") or {}
        hot = snapshot.get("hot") or {}
        entries = store.get("entries")
        if hits or shared:  # the first answer the cache gave: the welcome has done its work
            self.welcome.hide()
        self.cache.show_value(
            fmt.plural(entries, "entry", "entries") if entries is not None else "–",
            f"{fmt.size(store.get('bytes'))} on disk, {fmt.count(hot.get('entries'))} in memory "
            f"({fmt.size(hot.get('bytes'))})",
        )

    @Slot(dict)
    def show_ollama(self, state: Mapping[str, Any]) -> None:
        shape, words, tone = fmt.ollama_state(state)
        palette = self.ollama.value.palette()
        palette.setColor(QPalette.ColorRole.WindowText, tone_colour(self, tone))
        self.ollama.value.setPalette(palette)
        version = state.get("version") if state.get("state") in ("running", "attached") else None
        detail = f"version {version}" if version else ""
        if state.get("state") == "not_installed":  # the welcome says how to install it
            detail = "Cached answers still work; new prompts need Ollama."
        elif state.get("state") == "running":
            detail = f"{detail}; Ollacache started it and looks after it" if detail else "Ollacache looks after it"
        elif not_ollama(state):
            detail = "not Ollama: a server of another kind answers there, and requests go to it as they are"
        elif state.get("state") == "attached":
            detail = (f"{detail}; " if detail else "") + "started outside Ollacache, which will not stop it"
        elif state.get("reason"):
            detail = f"{detail}: {state['reason']}" if detail else str(state["reason"])
        self.ollama.show_value(f"{shape} {words}", detail)
        self.welcome.show_ollama(state)
