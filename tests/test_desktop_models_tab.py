"""The Models tab against a real engine and the fake Ollama: every installed model with its details, which are
in memory and until when, Unload, and what the cache holds and saved for each."""

from __future__ import annotations

import httpx
import pytest
from pytestqt.qtbot import QtBot

from desktop.app import TrayApp
from desktop.dashboard.models_tab import COLUMNS, NO_MODEL_LIST, NO_RUNNER, ModelsTab, in_memory, runner_memory
from desktop.dashboard_window import build_dashboard
from desktop.icons import IconState
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, supervised_ollama, tray_app  # noqa: F401  (fixtures)
from tests.fakes.ollama_server import FakeOllama

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def row_of(tab: object, name: str, tips: bool = False) -> dict[str, str]:
    """The texts of a model's row (``tips``: their tooltips)."""
    table = tab.table  # type: ignore[attr-defined]
    for row in range(table.rowCount()):
        if table.item(row, 0).text() == name:
            items = {column: table.item(row, index) for index, column in enumerate(COLUMNS)}
            return {column: item.toolTip() if tips else item.text() for column, item in items.items()}
    raise AssertionError(f"{name} is not listed")


@pytest.fixture
def runners(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake `ollama` the engine supervises starts a runner process per loaded model."""
    monkeypatch.setenv("FAKE_OLLAMA_RUNNERS", "1")


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
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["Cached"] == "1", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["Hit rate"] == "66.7 %", timeout=WAIT_MS)
    llama = row_of(tab, "llama3.2:latest")
    assert tab.table.columnWidth(0) >= tab.table.sizeHintForColumn(0)  # the names whole, however narrow the window
    details = next(model["details"] for model in installed if model["name"] == "llama3.2:latest")
    assert (llama["Family"], llama["Parameters"], llama["Quantisation"]) == (
        details["family"],
        details["parameter_size"],
        details["quantization_level"],
    )
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["In memory"] != "–", timeout=WAIT_MS)  # loaded by the miss
    assert row_of(tab, "llama3.2:latest")["Unloads"] != "–"
    others = [model["name"] for model in installed if model["name"] != "llama3.2:latest"]
    assert all(row_of(tab, name)["In memory"] == "–" and row_of(tab, name)["Cached"] == "0" for name in others)

    tab.table.selectRow([tab.table.item(row, 0).text() for row in range(tab.table.rowCount())].index("llama3.2:latest"))
    assert tab.unload.isEnabled()
    tab.unload.click()
    qtbot.waitUntil(lambda: row_of(tab, "llama3.2:latest")["In memory"] == "–", timeout=WAIT_MS)
    assert not tab.unload.isEnabled() and tab.unload.toolTip()
    assert httpx.get(f"{behind_fake}/api/ps").json()["models"] == []
    assert tray_app.errors.last is None


def test_each_loaded_model_shows_the_resident_memory_of_its_own_runner(
    runners: None, supervised_ollama: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    models = [{"name": "llama3.2:latest", "runner_mib": 48}, {"name": "qwen3:0.6b"}, {"name": "nomic-embed-text"}]
    httpx.post(f"{supervised_ollama}/_fake/config", json={"models": models}).raise_for_status()
    for model in ("llama3.2", "qwen3:0.6b"):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
        assert httpx.post(f"{tray_app.engine.url}/api/chat", json=body, timeout=30).status_code == 200
    pids = httpx.get(f"{supervised_ollama}/_fake/env").json()["runners"]
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    tab = window.models
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: row_of(tab, "qwen3:0.6b")["Runner RAM"] != "–", timeout=WAIT_MS)
    llama, qwen = row_of(tab, "llama3.2:latest"), row_of(tab, "qwen3:0.6b")
    assert llama["Runner RAM"].endswith(" MiB") and float(llama["Runner RAM"].split()[0]) >= 48
    assert qwen["Runner RAM"].endswith(" MiB") and float(qwen["Runner RAM"].split()[0]) < 48  # its own, not a total
    assert f"pid {pids['llama3.2:latest']}" in row_of(tab, "llama3.2:latest", tips=True)["Runner RAM"]
    assert row_of(tab, "nomic-embed-text:latest")["Runner RAM"] == "–"  # not loaded
    assert tray_app.errors.last is None


def test_a_runners_total_says_it_is_one_and_names_its_models() -> None:
    shared = {"runner": {"rss_bytes": int(9.4 * 2**30), "pids": [10, 11], "models": ["a:latest", "b:latest"]}}
    text, tip = runner_memory("a:latest", shared)
    assert text == "9.4 GiB, 2 models" and "a:latest and b:latest" in tip and "could not be told apart" in tip
    assert runner_memory("a:latest", {"runner": None}) == ("–", NO_RUNNER)  # loaded, but no runner found
    assert runner_memory("a:latest", None) == ("–", "")  # not loaded


def test_what_a_loaded_model_takes_says_where_it_is() -> None:
    gib = 2**30
    assert in_memory({"size": 2 * gib, "size_vram": 2 * gib}) == "2.0 GiB in VRAM"
    assert in_memory({"size": 2 * gib, "size_vram": gib}) == "2.0 GiB (1.0 GiB in VRAM)"
    assert in_memory({"size": 2 * gib, "size_vram": 0}) == "2.0 GiB in RAM"  # a machine without a graphics card
    assert in_memory(None) == "–"


@pytest.fixture
def openai_only(fake: FakeOllama, behind_fake: str) -> str:
    """The engine forwards to a server that is not Ollama: 404 on /api/version and /api/tags, as llama.cpp's."""
    fake.configure(version=None, tags_enabled=False)
    return behind_fake


def test_a_server_that_is_not_ollama_is_named_and_its_models_are_not_asked_for(
    openai_only: str, tray_app: TrayApp, qtbot: QtBot
) -> None:
    window = build_dashboard(tray_app.context)
    qtbot.addWidget(window)
    window.tabs.setCurrentWidget(window.models)
    qtbot.waitUntil(lambda: window.models.note.text().endswith(NO_MODEL_LIST), timeout=WAIT_MS)
    assert window.models.table.rowCount() == 0
    assert "not Ollama" in window.cards.ollama.detail.text()
    assert not window.ollama.restart.isEnabled() and "not Ollama" in window.ollama.restart.toolTip()
    assert tray_app.errors.last is None


def test_why_the_model_list_is_missing_stays_said_until_a_list_comes(qtbot: QtBot) -> None:
    tab = ModelsTab()
    qtbot.addWidget(tab)
    tab.show_installed([{"name": "llama3.2:latest"}])
    tab.show_unavailable("Ollama is not running")
    tab.show_loaded([])  # the loaded models answer after the refusal
    assert tab.note.isVisibleTo(tab) and tab.note.text().endswith("Ollama is not running")
    tab.show_installed([{"name": "llama3.2:latest"}])
    assert not tab.note.isVisibleTo(tab)
    tab.show_unavailable(NO_MODEL_LIST)
    with qtbot.waitSignal(tab.refresh_requested, timeout=WAIT_MS):  # an Ollama answers there now: ask again
        tab.show_ollama({"state": "attached", "version": "0.12.0"})
