"""API keys… from the Settings window against a real engine process: a key made from the window is listed, shown
once to copy and works on the proxy; revoked after a confirmation naming it, it stops working; the window says
when keys are asked for and that the traffic is plain HTTP without a certificate."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from core.access.keyring import KeyRing
from desktop.app import TrayApp
from desktop.icons import IconState
from desktop.settings_window import SettingsWindow
from desktop.settings_window.keys import SHOWN_ONCE, KeysDialog, sharing_note
from tests.desktop_qt import WAIT_MS, behind_fake, qloop, tray_app  # noqa: F401  (fixtures)

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.fixture
def every_client_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine the app starts asks this computer's clients for a key too, so a test on loopback can use one."""
    monkeypatch.setenv("OLLACACHE_REQUIRE_KEY", "always")


def open_keys(tray_app: TrayApp, qtbot: QtBot, tmp_path: Path) -> KeysDialog:
    """The Settings window shown, and API keys… clicked on its General tab, with the keys read."""
    qtbot.waitUntil(lambda: tray_app.tray.state is IconState.SERVING, timeout=WAIT_MS)
    window = SettingsWindow(tray_app.context, QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.fields), timeout=WAIT_MS)
    (button,) = [b for b in window.tabs.widget(0).findChildren(QPushButton) if b.text() == "API &keys…"]
    button.click()
    keys = window.keys
    assert keys is not None and keys.isVisible()
    qtbot.waitUntil(lambda: keys.loaded, timeout=WAIT_MS)
    return keys


def test_a_key_made_in_the_window_is_listed_copied_works_and_stops_working_once_revoked(
    every_client_needs_a_key: None, behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    keys = open_keys(tray_app, qtbot, tmp_path)
    assert keys.names() == [] and not keys.revoke_button.isEnabled()
    assert keys.note.text().startswith("Every client, this computer's too, needs one of these keys")
    keys.add_button.click()
    asking = keys.asking
    assert asking is not None
    asking.setTextValue("alice-laptop")
    asking.accept()
    qtbot.waitUntil(lambda: keys.names() == ["alice-laptop"], timeout=WAIT_MS)
    secret = keys.new_key.text()
    assert keys.shown_once.isVisible() and keys.new_key.isReadOnly()
    assert keys.made.text() == f"New key for alice-laptop. {SHOWN_ONCE}"
    keys.copy_button.click()
    assert QGuiApplication.clipboard().text() == secret
    assert KeyRing(Path(os.environ["OLLACACHE_CONFIG_DIR"])).name_of(secret.encode()) == "alice-laptop"
    url = tray_app.engine.url
    assert url is not None
    with_key = {"Authorization": f"Bearer {secret}"}
    assert httpx.post(url + "/api/chat", json=CHAT, timeout=30).status_code == 401
    assert httpx.post(url + "/api/chat", json=CHAT, headers=with_key, timeout=30).is_success

    keys.listing.topLevelItem(0).setSelected(True)
    assert keys.revoke_button.isEnabled()
    keys.revoke_button.click()
    box = keys.confirming
    assert box is not None and "Revoke the key 'alice-laptop'?" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: keys.status.text() == "Revoked alice-laptop.", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: keys.names() == [], timeout=WAIT_MS)
    assert not keys.shown_once.isVisible() and keys.new_key.text() == ""  # the key shown is no key any more
    assert httpx.post(url + "/api/chat", json=CHAT, headers=with_key, timeout=30).status_code == 401


def test_with_sharing_off_the_window_says_when_keys_work_and_a_taken_name_is_said_there(
    behind_fake: str, tray_app: TrayApp, qtbot: QtBot, tmp_path: Path
) -> None:
    keys = open_keys(tray_app, qtbot, tmp_path)
    assert keys.note.text().startswith("Keys work once Share on my network is on")
    assert "plain HTTP unless a certificate is set" in keys.note.text()
    for name in ("bob", "bob"):
        keys.ask_name()
        assert keys.asking is not None
        keys.asking.setTextValue(name)
        keys.asking.accept()
        qtbot.waitUntil(lambda: keys.names() == ["bob"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "a key named 'bob' exists" in keys.status.text(), timeout=WAIT_MS)
    assert keys.status.text().startswith("Could not make the key:") and keys.names() == ["bob"]
    keys.listing.topLevelItem(0).setSelected(True)
    box = keys.ask_revoke()
    assert box is not None
    box.button(QMessageBox.StandardButton.Cancel).click()  # Cancel keeps it
    assert keys.confirming is None and keys.names() == ["bob"]
    keys.close()
    assert keys.new_key.text() == ""  # shown once: closing forgets it


def test_the_sharing_note_says_who_needs_a_key_and_whether_traffic_is_encrypted() -> None:
    def rows(**values: object) -> list[dict[str, object]]:
        return [{"name": f"proxy.{name}", "value": value} for name, value in values.items()]

    assert sharing_note(rows(share=False, require_key="remote")).startswith("Keys work once Share on my network is on")
    assert sharing_note(rows(share=True)).startswith("Other computers on your network need one of these keys.")
    pending = [{"name": "proxy.share", "value": True, "pending": True}]
    assert "once the engine restarts" in sharing_note(pending)
    assert sharing_note(rows(share=True, tls_cert="/etc/cert.pem")).endswith(
        "Traffic is HTTPS, with the certificate set."
    )
    assert "plain HTTP unless a certificate is set" in sharing_note(rows(share=True))
