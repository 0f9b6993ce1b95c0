"""The Windows installer as built on Linux (packaging/windows_msi.py with msitools' wixl), read back with msiinfo:
what it installs, where, the Start-menu entries, and the start-at-login value it writes and removes. Installing
it under Wine is tested with the Windows build (tests/test_windows_build.py)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core import __version__
from desktop.autostart import APP_NAME, RUN_KEY, launch_command, split_run_value
from tests.harness import packaging_module

pytestmark = pytest.mark.skipif(
    not (shutil.which("wixl") and shutil.which("msiinfo")),
    reason="needs msitools' wixl and msiinfo (.ci/run installs them)",
)
Table = Callable[[Path, str], list[dict[str, str]]]
LAUNCHERS = Path(importlib.util.find_spec("pip").origin).parent / "_vendor" / "distlib"  # type: ignore[arg-type, union-attr]


@pytest.fixture
def msi_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    return packaging_module("windows_msi", monkeypatch)


@pytest.fixture
def table(msi_module: Any) -> Table:
    """The rows of one table of an MSI, by column name (msiinfo, as the Windows build's checks read it)."""
    return msi_module.msi_table  # type: ignore[no-any-return]


@pytest.fixture
def built(tmp_path: Path, msi_module: Any) -> Path:
    """The installer of a stand-in build: pip's Windows launchers as the two executables, a nested file."""
    folder = tmp_path / "ollacache"
    (folder / "_internal" / "resources").mkdir(parents=True)
    shutil.copy(LAUNCHERS / "t64.exe", folder / "ollacache.exe")
    shutil.copy(LAUNCHERS / "w64.exe", folder / "OllacacheApp.exe")
    (folder / "_internal" / "resources" / "serving.svg").write_text("<svg/>")
    icon = tmp_path / "ollacache.ico"
    icon.write_bytes(b"\0\0\1\0")
    return msi_module.write_msi(folder, icon, tmp_path / "out")  # type: ignore[no-any-return]


def test_the_installer_holds_every_file_of_the_build_in_the_users_programs_folder(built: Path, table: Table) -> None:
    assert built.name == f"Ollacache-{__version__}-x64.msi"
    files = {row["FileName"].split("|")[-1] for row in table(built, "File")}
    assert files == {"ollacache.exe", "OllacacheApp.exe", "serving.svg"}
    directories = {row["Directory"]: row for row in table(built, "Directory")}
    assert directories["INSTALLDIR"]["DefaultDir"] == "Ollacache"
    assert directories[directories["INSTALLDIR"]["Directory_Parent"]]["Directory_Parent"] == "LocalAppDataFolder"
    properties = {row["Property"]: row["Value"] for row in table(built, "Property")}
    assert properties["ProductVersion"] == __version__ and properties["ARPPRODUCTICON"] == "ollacache.ico"
    assert "ALLUSERS" not in properties  # per user: no administrator needed


def test_the_start_menu_opens_the_windowed_app_and_offers_the_uninstall(built: Path, table: Table) -> None:
    shortcuts = {row["Name"]: row for row in table(built, "Shortcut")}
    assert shortcuts["Ollacache"]["Target"] == "[INSTALLDIR]OllacacheApp.exe"
    assert shortcuts["Uninstall Ollacache"]["Target"] == "[System64Folder]msiexec.exe"
    assert shortcuts["Uninstall Ollacache"]["Arguments"] == "/x [ProductCode]"


def test_start_at_login_is_asked_for_and_is_the_entry_the_app_writes_and_reads(built: Path, table: Table) -> None:
    """``msiexec /i ... STARTATLOGIN=1`` writes the value the app's own switch writes, so the app shows it on."""
    [value] = [row for row in table(built, "Registry") if row["Name"] == APP_NAME]
    assert (value["Root"], value["Key"]) == ("1", RUN_KEY)  # 1: HKEY_CURRENT_USER
    app = "C:\\Users\\Ana Lopez\\AppData\\Local\\Programs\\Ollacache\\"  # a space in the path, as is common
    assert split_run_value(value["Value"].replace("[INSTALLDIR]", app)) == launch_command(
        True, frozen=True, executable=app + "OllacacheApp.exe"
    )
    features = {row["Feature"]: row for row in table(built, "Feature")}
    assert int(features["login"]["Level"]) > 1 and features["app"]["Level"] == "1"  # off unless asked
    actions = {row["Action"]: row for row in table(built, "CustomAction")}
    assert actions["WantLogin"]["Source"] == "INSTALLLEVEL"
    sequence = {row["Action"]: row for row in table(built, "InstallExecuteSequence")}
    assert sequence["WantLogin"]["Condition"] == "STARTATLOGIN=1 AND NOT Installed"


def test_uninstalling_removes_the_start_at_login_value_whoever_wrote_it(built: Path, table: Table) -> None:
    actions = {row["Action"]: row for row in table(built, "CustomAction")}
    assert actions["FindReg"]["Target"] == "[System64Folder]reg.exe"
    assert actions["ForgetLogin"]["Target"] == f"delete HKCU\\{RUN_KEY} /v {APP_NAME} /f"
    sequence = {row["Action"]: row for row in table(built, "InstallExecuteSequence")}
    assert sequence["ForgetLogin"]["Condition"] == 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE'  # kept on upgrade
    assert int(sequence["FindReg"]["Sequence"]) < int(sequence["ForgetLogin"]["Sequence"])


def test_a_folder_that_is_no_windows_build_or_a_missing_wixl_is_one_line(
    tmp_path: Path, msi_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(msi_module.BuildError, match=r"holds no OllacacheApp.exe: is it a Windows build\?$"):
        msi_module.write_msi(tmp_path, tmp_path / "x.ico", tmp_path / "out")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(msi_module.BuildError, match=r"^wixl was not found"):
        msi_module.write_msi(tmp_path, tmp_path / "x.ico", tmp_path / "out")
    assert not list(tmp_path.rglob("*.msi"))


def test_an_installer_replaces_any_installed_version_up_to_its_own_and_refuses_a_downgrade(
    built: Path, table: Table
) -> None:
    """A rebuilt installer of the same version is a new product with the same components: without removing
    the installed one first, its uninstall would leave the files in place for the other."""
    rows = table(built, "Upgrade")
    removes = {row["ActionProperty"]: row for row in rows if not int(row["Attributes"]) & 2}  # 2: only detect
    assert removes["WIX_UPGRADE_DETECTED"]["VersionMax"] == __version__  # older versions
    assert removes["SAME_VERSION_FOUND"]["VersionMin"] == __version__
    assert int(removes["SAME_VERSION_FOUND"]["Attributes"]) & 256  # 256: the minimum included
    conditions = {row["Condition"] for row in table(built, "LaunchCondition")}
    assert "NOT WIX_DOWNGRADE_DETECTED" in conditions
    sequence = {row["Action"] for row in table(built, "InstallExecuteSequence")}
    assert {"FindRelatedProducts", "RemoveExistingProducts"} <= sequence
