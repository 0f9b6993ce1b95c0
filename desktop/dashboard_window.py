"""The dashboard as the app shows it: :class:`~desktop.dashboard.DashboardWindow` wired to the feed and
the engine.

The window only has slots and signals; this is where they meet the app. The feed's stats and events fill
it (``stats`` once a second, ``requests_did_finish`` batches for the recent requests, Ollama's events for its
panel, the warm-up's events for the Cache tab); its buttons become control calls run through the app's one
error reporter (a warm-up the engine refuses to start is said in the Cache tab). Ollama's models and
log are read whenever the feed (re)connects, so a dashboard opened before the engine is up says nothing
is wrong and fills in once it answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.control.client import AsyncControlClient, ControlError
from core.observe.published import OLLAMA_EVENTS
from desktop.availability import not_ollama, ollama_answers
from desktop.dashboard import DashboardWindow
from desktop.dashboard.models_tab import NO_MODEL_LIST
from desktop.windows import AppContext

LOG_LINES = 200  # of Ollama's log shown in its panel


def build_dashboard(context: AppContext) -> DashboardWindow:
    """The dashboard for the running app (a :data:`~desktop.windows.WindowFactory`)."""
    window = DashboardWindow()
    feed = context.feed

    def on_ollama(name: str, payload: dict[str, Any]) -> None:
        if isinstance(payload.get("ollama"), dict):
            window.show_ollama(payload["ollama"])
            refresh_models(payload["ollama"])

    def refresh_models(ollama: Mapping[str, Any] | None = None) -> None:
        """Ollama's loaded models, asked of an Ollama that runs; none otherwise, and no error for that."""
        ollama = ollama or (feed.current or {}).get("ollama")
        if isinstance(ollama, Mapping) and not ollama_answers(ollama):
            window.show_models([])
            return
        context.call(
            "list Ollama's loaded models",
            lambda client: client.ollama_models(),
            window.show_models,
            failed=lambda _why: window.show_models([]),
        )

    def refresh_installed() -> None:
        """The installed models with their cached answers, from an Ollama that runs (asked again when the tab is
        shown, after a pull, and on Refresh)."""
        ollama = (feed.current or {}).get("ollama")
        if isinstance(ollama, Mapping) and not ollama_answers(ollama):
            state = ollama.get("state")
            window.models.show_unavailable(
                NO_MODEL_LIST
                if not_ollama(ollama)
                else "Ollama is " + ("not installed" if state == "not_installed" else "not running")
            )
            return
        context.call(
            "list Ollama's models",
            lambda client: client.installed_models(),
            window.models.show_installed,
            failed=window.models.show_unavailable,
        )

    def refresh_models_tab() -> None:
        """What the Models tab shows: the installed models and which of them are in memory now."""
        refresh_installed()
        refresh_models()

    def refresh_log() -> None:
        context.call(
            "read Ollama's log", lambda client: client.ollama_log(LOG_LINES), lambda log: window.show_log(log["lines"])
        )

    def on_url(url: str) -> None:
        if url:
            window.set_endpoint(url)

    feed.stats_changed.connect(window.show_stats)
    feed.requests_did_finish.connect(lambda batch: window.add_requests(batch.get("requests") or [], running=False))
    feed.requests_did_start.connect(lambda batch: window.add_requests(batch.get("requests") or [], running=True))
    feed.warm_did_progress.connect(window.show_warm)
    feed.warm_did_finish.connect(window.show_warm)
    feed.on(OLLAMA_EVENTS, on_ollama)
    feed.url_changed.connect(on_url)
    window.unload_requested.connect(
        lambda model: context.call(f"unload {model}", lambda client: client.unload(model), lambda _: refresh_models())
    )
    window.restart_ollama_requested.connect(
        lambda: context.call("restart Ollama", lambda client: client.restart_ollama())
    )
    window.log_requested.connect(refresh_log)
    window.models_requested.connect(refresh_models_tab)
    window.tabs.currentChanged.connect(
        lambda _index: refresh_models_tab() if window.tabs.currentWidget() is window.models else None
    )

    def detect_ollama() -> None:
        """Detect again: the engine looks for the binary and the address anew (a user's start); still nothing
        is said in the welcome, not as an error."""
        context.call(
            "look for Ollama again",
            lambda client: client.start_ollama(),
            lambda answer: window.show_ollama(answer["ollama"]),
            failed=lambda _why: window.cards.welcome.say_not_found(),
        )

    window.detect_ollama_requested.connect(detect_ollama)
    window.resume_requested.connect(lambda: context.call("resume caching", lambda client: client.resume()))

    def start_warmup(items: list[Any], concurrency: int) -> None:
        async def start(client: AsyncControlClient) -> Any:
            try:
                return await client.warm_start(items, concurrency)
            except ControlError as error:
                window.show_warm_error(str(error))
                return None

        context.call("start warming the cache", start, lambda status: status and window.show_warm(status))

    window.warm_requested.connect(start_warmup)

    def on_connection(connected: bool) -> None:
        if connected:  # the engine answers (again): what its Ollama holds and says now
            refresh_models_tab()
            refresh_log()
            context.call("read the warm-up's progress", lambda client: client.warm_status(), window.show_warm)

    feed.connection_changed.connect(on_connection)
    on_url(feed.url or "")
    if feed.stats:
        window.show_stats(feed.stats)
    on_connection(feed.connected)  # opened before the engine is up: filled once it is
    return window
