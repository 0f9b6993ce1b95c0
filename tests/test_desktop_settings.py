"""The Settings window against a real engine process: built from the engine's table, refusing bad
input next to the field with nothing written, writing good input and saying what it needs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QMessageBox
from pytestqt.qtbot import QtBot

from core.config.settings import SECTIONS, SPECS, load
from desktop.app import TrayApp
from desktop.icons import IconState
from desktop.settings_window import SettingsWindow
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)
from tests.fakes.ollama_server import FakeOllama
from tests.harness import proxy_process

COMMENTED = '# mine\n[cache]\nttl = "30d"  # a month\n'


def config_file() -> Path:
    return Path(os.environ["OLLACACHE_CONFIG_DIR"]) / "config.toml"


@pytest.fixture
def window(behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path) -> SettingsWindow:
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    shown = SettingsWindow(tray_app.context, QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitUntil(lambda: bool(shown.fields), timeout=WAIT_MS)
    return shown


def test_every_setting_of_the_table_has_a_field_on_its_sections_tab(window: SettingsWindow) -> None:
    window.advanced.setChecked(True)
    assert [window.tabs.tabText(index) for index in range(window.tabs.count())] == list(SECTIONS)
    assert sorted(window.fields) == sorted(spec.name for spec in SPECS)
    for spec in SPECS:
        field = window.fields[spec.name]
        page = window.tabs.widget(list(SECTIONS).index(spec.section))
        assert page.isAncestorOf(field.widget), spec.name
        expected = {"switch": QCheckBox, "choice": QComboBox}.get(spec.kind, QLineEdit)
        assert isinstance(field.editor, expected), spec.name
        assert spec.help in field.editor.toolTip()
    size = window.fields["cache.size_limit"].editor
    assert isinstance(size, QLineEdit) and size.text() == "" and size.placeholderText() == "2 GiB (default)"
    assert window.fields["cache.dir"].browse is not None
    expert = window.tabs.widget(list(SECTIONS).index("Ollama server (expert)"))
    assert "ollama command line" in "".join(label.text() for label in expert.findChildren(type(window.status)))


def test_a_value_from_the_environment_is_read_only_and_says_so(
    window: SettingsWindow, behind_fake: str, qtbot: QtBot
) -> None:
    upstream = window.fields["proxy.upstream"]
    assert isinstance(upstream.editor, QLineEdit) and upstream.editor.isReadOnly()
    window.tabs.setCurrentIndex(list(SECTIONS).index("Ollama"))
    qtbot.keyClicks(upstream.editor, "x")  # typing does nothing
    assert upstream.editor.text() == behind_fake and not upstream.changed() and "proxy.upstream" not in window.changes()
    assert upstream.info.text().startswith("Set by the environment variable OLLACACHE_UPSTREAM: change it there.")
    assert not window.fields["cache.ttl"].editor.isReadOnly()  # type: ignore[attr-defined]
    assert window.fields["cache.ttl"].editor.placeholderText() == "30d (default)"  # type: ignore[attr-defined]


def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_written(window: SettingsWindow, qtbot: QtBot) -> None:
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(COMMENTED)
    before = config_file().read_bytes()
    ttl = window.fields["cache.ttl"]
    ttl.set_value_text("soon")
    window.fields["cache.memory_limit"].set_value_text("32MiB")  # a good value beside it is not written either
    assert window.changes() == {"cache.ttl": "soon", "cache.memory_limit": "32MiB"}
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.status.text().startswith("Nothing was saved"), timeout=WAIT_MS)
    assert ttl.error.isVisibleTo(window)
    assert ttl.error.text() == "⚠ Enter a duration such as 12h or 30d (0 keeps answers for good)"
    assert not window.fields["cache.memory_limit"].error.isVisibleTo(window)
    assert window.status.text() == "Nothing was saved: Keep answers for needs another value (see below it)."
    assert config_file().read_bytes() == before


def test_a_good_value_is_written_and_the_status_says_it_needs_an_engine_restart(
    window: SettingsWindow, qtbot: QtBot
) -> None:
    window.fields["cache.ttl"].set_value_text("7d")
    assert window.apply_button.isEnabled()
    window.apply_button.click()
    qtbot.waitUntil(
        lambda: window.status.text() == "Saved. Keep answers for: in force when the engine restarts.", timeout=WAIT_MS
    )
    assert 'ttl = "7d"' in config_file().read_text()
    qtbot.waitUntil(lambda: "Your change is saved" in window.fields["cache.ttl"].info.text(), timeout=WAIT_MS)
    assert window.fields["cache.ttl"].editor.text() == "7d"  # type: ignore[attr-defined]
    assert not window.apply_button.isEnabled()
    assert window.restart_engine.isVisible() and window.restart_engine.isEnabled()  # the app started this engine


def test_the_window_remembers_its_tab(window: SettingsWindow, qtbot: QtBot, tmp_path: Path) -> None:
    window.tabs.setCurrentIndex(2)
    window.close()
    again = SettingsWindow(None, QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.show_table({"settings": [], "sections": list(SECTIONS)})
    assert again.tabs.currentIndex() == 2


def autostart_entry() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "autostart" / "ollacache.desktop"


def test_start_at_login_and_start_hidden_are_written_on_apply_and_read_back(
    window: SettingsWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    rows = window.login
    assert rows.at_login is not None and rows.hidden is not None
    assert not rows.at_login.isChecked() and not rows.hidden.isEnabled()  # off by default
    rows.at_login.setChecked(True)
    assert rows.hidden.isEnabled() and window.apply_button.isEnabled()
    assert not autostart_entry().exists()  # nothing before Apply
    rows.hidden.setChecked(True)
    window.apply_button.click()
    assert window.status.text() == "Saved: start at login: on, hidden."
    assert "--hidden" in autostart_entry().read_text() and not window.apply_button.isEnabled()
    again = SettingsWindow(None, QSettings(str(tmp_path / "qt2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.show_table({"settings": [], "sections": list(SECTIONS)})  # read from the platform's own entry
    assert again.login.at_login is not None and again.login.at_login.isChecked()
    assert again.login.hidden is not None and again.login.hidden.isChecked()
    again.login.at_login.setChecked(False)
    again.apply()
    assert not autostart_entry().exists()


def test_a_refused_setting_leaves_start_at_login_as_it_was(window: SettingsWindow, qtbot: QtBot) -> None:
    assert window.login.at_login is not None
    window.login.at_login.setChecked(True)
    editor = window.fields["cache.ttl"].editor
    assert isinstance(editor, QLineEdit)
    editor.setText("soon")
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.status.text().startswith("Nothing was saved"), timeout=WAIT_MS)
    assert not autostart_entry().exists()


def test_clear_cache_on_the_cache_tab_asks_and_empties_the_store(
    window: SettingsWindow, tray_app: TrayApp, behind_fake: str, qtbot: QtBot
) -> None:
    url = tray_app.engine.url
    assert url is not None
    httpx.post(
        url + "/api/chat",
        json={
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": False,
            "options": {"temperature": 0},
        },
    )
    qtbot.waitUntil(lambda: (tray_app.feed.stats or {}).get("store", {}).get("entries") == 1, timeout=WAIT_MS)
    assert window.clear_button is not None and window.clear_button.isEnabled()
    qtbot.waitUntil(
        lambda: window.store_summary is not None and window.store_summary.text().startswith("1 entry, "),
        timeout=WAIT_MS,
    )
    window.clear_button.click()
    box = window.clearing.box if window.clearing else None
    assert box is not None and "Remove all 1 cached entry?" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: window.status.text() == "Cleared 1 cached answer.", timeout=WAIT_MS)
    assert httpx.get(url + "/-/stats").json()["store"]["entries"] == 0


def visible_rows(window: SettingsWindow) -> set[str]:
    return {name for name, (form, _, _) in window.rows.items() if form.isRowVisible(window.fields[name].widget)}


def test_common_settings_show_and_advanced_ones_on_request(window: SettingsWindow) -> None:
    assert not window.advanced.isChecked()
    shown = visible_rows(window)
    assert {"cache.dir", "cache.size_limit", "cache.ttl", "proxy.port", "tuning.num_thread"} <= shown
    assert not shown & {"cache.memo_limit", "cache.hits_limit", "cache.sqlite_cache", "cache.sqlite_mmap"}
    expert = list(SECTIONS).index("Ollama server (expert)")
    assert not window.tabs.isTabVisible(expert)  # nothing common there
    labels = {label.text() for label in window.findChildren(QLabel) if label.buddy() is not None}
    assert "Cache size:" in labels and not any("." in label.rstrip(".:") for label in labels)  # no config keys
    window.advanced.setChecked(True)
    assert visible_rows(window) == set(window.fields) and window.tabs.isTabVisible(expert)


def test_what_is_typed_is_checked_as_it_is_typed_and_nothing_is_written(window: SettingsWindow, qtbot: QtBot) -> None:
    size = window.fields["cache.size_limit"]
    size.set_value_text("lots")
    qtbot.waitUntil(lambda: not size.error.isHidden(), timeout=WAIT_MS)
    assert size.error.text() == "⚠ Enter a size such as 2 GiB or 500 MB"
    size.set_value_text("500 MB")
    qtbot.waitUntil(size.error.isHidden, timeout=WAIT_MS)
    assert not config_file().exists()


def test_a_relative_cache_folder_is_refused_under_its_field(
    window: SettingsWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = window.fields["cache.dir"]
    if not folder.editable:  # the tests set OLLACACHE_CACHE_DIR: the field is read-only, as it should be
        assert folder.editor.isReadOnly() and "OLLACACHE_CACHE_DIR" in folder.info.text()  # type: ignore[attr-defined]
        return
    folder.set_value_text("lots")  # pragma: no cover - only without OLLACACHE_CACHE_DIR


def test_restart_engine_now_restarts_the_engine_with_the_saved_settings_and_says_when_it_is_back(
    window: SettingsWindow, tray_app: TrayApp, qtbot: QtBot
) -> None:
    before = tray_app.engine.pid
    window.fields["cache.ttl"].set_value_text("7d")
    window.apply_button.click()
    qtbot.waitUntil(window.restart_engine.isVisible, timeout=WAIT_MS)
    window.restart_engine.click()
    qtbot.waitUntil(lambda: window.status.text() == "The engine is back, with the settings saved.", timeout=WAIT_MS)
    assert tray_app.engine.pid not in (None, before) and not window.restart_engine.isVisible()
    assert httpx.get(f"{tray_app.engine.url}/-/settings").json()["settings"][0]  # it answers
    qtbot.waitUntil(lambda: not window.fields["cache.ttl"].row.get("pending"), timeout=WAIT_MS)  # now in force
    assert tray_app.errors.last is None


@pytest.fixture
def own_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The cache folder is the settings' to choose (no OLLACACHE_CACHE_DIR), in a private user cache folder."""
    monkeypatch.delenv("OLLACACHE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


def test_a_typo_in_the_cache_folder_is_refused_and_a_new_folder_asks_first(
    own_cache_folder: Path, window: SettingsWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    folder = window.fields["cache.dir"]
    assert folder.editable and str(own_cache_folder) in folder.editor.placeholderText()  # type: ignore[attr-defined]
    folder.set_value_text("lots")
    qtbot.waitUntil(lambda: not folder.error.isHidden(), timeout=WAIT_MS)
    assert "'lots' is not a full path" in folder.error.text() and not window.apply_button.isEnabled()
    elsewhere = tmp_path / "elsewhere"
    folder.set_value_text(str(elsewhere))
    qtbot.waitUntil(folder.error.isHidden, timeout=WAIT_MS)
    assert window.apply_button.isEnabled()
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.cache_question is not None and window.cache_question.isVisible(), timeout=WAIT_MS)
    assert window.cache_question is not None
    assert "stay there; nothing is moved or deleted" in window.cache_question.informativeText()
    window.cache_question.button(QMessageBox.StandardButton.Cancel).click()
    assert not config_file().exists()  # asked, and not done
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.cache_question is not None and window.cache_question.isVisible(), timeout=WAIT_MS)
    [change] = [b for b in window.cache_question.buttons() if b.text() == "&Change folder"]
    change.click()
    qtbot.waitUntil(
        lambda: window.status.text() == "Saved. Cache folder: in force when the engine restarts.", timeout=WAIT_MS
    )
    assert str(elsewhere) in config_file().read_text()


def test_restart_engine_now_is_greyed_with_the_reason_for_an_engine_the_app_did_not_start(
    upstream: tuple[FakeOllama, str], qloop: object, qtbot: QtBot, tmp_path: Path
) -> None:
    with proxy_process(upstream[1]):
        app = TrayApp(load())
        app.start()
        try:
            qtbot.waitUntil(lambda: app.tray.state is IconState.SERVING, timeout=WAIT_MS)
            assert app.engine.attached
            shown = SettingsWindow(app.context, QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
            qtbot.addWidget(shown)
            shown.show()
            qtbot.waitUntil(lambda: bool(shown.fields), timeout=WAIT_MS)
            shown.fields["cache.ttl"].set_value_text("7d")
            shown.apply_button.click()
            qtbot.waitUntil(shown.restart_engine.isVisible, timeout=WAIT_MS)
            assert not shown.restart_engine.isEnabled()
            assert "started outside the app" in shown.restart_engine.toolTip()
        finally:
            with qtbot.waitSignal(app.finished, timeout=WAIT_MS):
                app.quit()


def overlaps(window: SettingsWindow, name: str) -> list[str]:
    """What is drawn over what in ``name``'s row: its error line, its help, the row after it."""
    field = window.fields[name]
    error, info, row = field.error.geometry(), field.info.geometry(), field.widget.geometry()
    faults = []
    if not field.error.isHidden() and error.bottom() >= info.top():
        faults.append(f"the error line {error} runs into the help {info}")
    if info.bottom() >= row.height():
        faults.append(f"the help {info} is cut off by its row {row}")
    below = [
        other.widget.geometry() for other in window.fields.values() if other.widget.parent() is field.widget.parent()
    ]
    if any(row.top() < other.top() <= row.bottom() for other in below):
        faults.append(f"the next row starts inside {row}")
    return faults


def test_a_refused_value_on_a_long_page_pushes_its_help_and_the_rows_below_down(
    window: SettingsWindow, qtbot: QtBot
) -> None:
    window.advanced.setChecked(True)
    window.tabs.setCurrentIndex(list(SECTIONS).index("Ollama server (expert)"))
    window.resize(720, 560)  # the page is longer than the window: it scrolls
    refused = ("ollama.max_queue", "ollama.load_timeout")
    for name in refused:
        window.fields[name].set_value_text("lots")
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.status.text().startswith("Nothing was saved"), timeout=WAIT_MS)
    with contextlib.suppress(qtbot.TimeoutError):  # laid out on the next turns of the event loop
        qtbot.waitUntil(lambda: not any(overlaps(window, name) for name in refused), timeout=WAIT_MS)
    assert {name: overlaps(window, name) for name in refused} == {name: [] for name in refused}


def test_every_value_in_force_fits_its_empty_field_at_the_windows_own_size(window: SettingsWindow) -> None:
    """The field shows the value and where it comes from; why (a tuned value's reason can be a sentence) is said
    under it, where it wraps."""
    window.advanced.setChecked(True)
    cut = {}
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)  # a tab is laid out when shown
        for name, field in window.fields.items():
            editor = field.editor
            if not isinstance(editor, QLineEdit) or not editor.isVisible() or editor.text():
                continue
            frame = editor.style().pixelMetric(editor.style().PixelMetric.PM_DefaultFrameWidth)
            room = editor.contentsRect().width() - 2 * frame - 8  # less the frame and the text's margins
            needed = editor.fontMetrics().horizontalAdvance(editor.placeholderText())
            if needed > room:
                cut[name] = (editor.placeholderText(), needed, room)
    assert cut == {}
    threads = window.fields["tuning.num_thread"]
    assert threads.editor.placeholderText().endswith(" (detected)")  # type: ignore[attr-defined]
    assert "Detected: one thread per " in threads.info.text()
