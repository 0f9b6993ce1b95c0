"""The Models tab against a real engine and the fake Ollama: every installed model with its details, which are
in memory and until when, Unload, and what the cache holds and saved for each."""

from __future__ import annotations

import httpx
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.dashboard.models_tab import COLUMNS
from desktop.dashboard_window import build_dashboard
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def row_of(tab: object, name: str) -> dict[str, str]:
    table = tab.table  # type: ignore[attr-defined]
    for row in range(table.rowCount()):
        if table.item(row, 0).text() == name:
            return {column: table.item(row, index).text() for index, column in enumerate(COLUMNS)}
    raise AssertionError(f"{name} is not listed")


def test_the_models_tab_lists_installed_models_what_is_loaded_and_what_the_cache_saved(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    url = tray_app.engine.url
    installed = httpx.get(f"{behind_fake}/api/tags").json()["models"]
    for _ in range(3):
        assert httpx.post(f"{url}/api/chat", json=CHAT).status_code == 200  # a miss, then two hits
    qtbot.waitUntil(lambda: httpx.get(f"{url}/-/stats").json()["store"]["entries"] == 1, timeout=WAIT_MS)
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    tab = window.models
    window.tabs.setCurrentWidget(tab)  # showing the tab asks the engine anew
    qtbot.waitUntil(lambda: tab.table.rowCount() == len(installed), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["Cached answers"] == "1", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["Hit rate"] == "66.7 %", timeout=WAIT_MS)
    llama = row_of(tab, "llama3.2:latest")
    details = next(model["details"] for model in installed if model["name"] == "llama3.2:latest")
    assert (llama["Family"], llama["Parameters"], llama["Quantisation"]) == (
        details["family"],
        details["parameter_size"],
        details["quantization_level"],
    )
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["In memory"] != "–", timeout=WAIT_MS)  # loaded by the miss
    assert row_of(tab, "llama3.2:latest")["Unloads"] != "–"
    others = [model["name"] for model in installed if model["name"] != "llama3.2:latest"]
    assert all(row_of(tab, name)["In memory"] == "–" and row_of(tab, name)["Cached answers"] == "0" for name in others)

    tab.table.selectRow([tab.table.item(row, 0).text() for row in range(tab.table.rowCount())].index("llama3.2:latest"))
    assert tab.unload.isEnabled()
    tab.unload.click()
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["In memory"] == "–", timeout=WAIT_MS)
    assert not tab.unload.isEnabled() and tab.unload.toolTip()
    assert httpx.get(f"{behind_fake}/api/ps").json()["models"] == []
    assert tray_app.errors.last is None
