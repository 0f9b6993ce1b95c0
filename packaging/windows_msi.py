"""The Windows installer: an MSI of the one-folder Windows build, made on Linux with msitools' ``wixl``.

    python packaging/windows_msi.py FOLDER [--icon ICO] [--out DIR]

It installs per user (no administrator) into ``%LOCALAPPDATA%\\Programs\\Ollacache``, adds Start-menu entries
for the app and for its uninstall, and registers with Windows' installed apps. ``STARTATLOGIN=1`` on the
``msiexec`` command line also writes the start-at-login Run value the app's own switch writes (HKCU ``Run``,
``Ollacache``); uninstalling removes it whoever wrote it (an MSI removes only values it wrote itself, so a small
action runs ``reg delete`` first). A newer version replaces an older one (major upgrade, one UpgradeCode).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from packaging_steps import BuildError, run  # noqa: E402

from core import __version__  # noqa: E402

UPGRADE_CODE = "6F1C2B7E-0A4D-4C39-9B0E-0C1A6E5D7F21"  # never changes: it is how Windows knows an upgrade
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Ollacache"  # the name the app's own start at login writes (desktop/autostart)
LOGIN_LEVEL = "100"  # above INSTALLLEVEL's default (1)
APP_EXE, CLI_EXE = "OllacacheApp.exe", "ollacache.exe"


def msi_name(version: str = __version__) -> str:
    return f"Ollacache-{version}-x64.msi"


def _element(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, tag, attributes)


def _add_tree(parent: ET.Element, folder: Path, base: Path, ids: itertools.count, components: list[str]) -> None:
    """A Directory element per folder and a Component holding one File per file, under ``parent``; sources are
    named relative to ``base``, where wixl runs (it takes no absolute paths)."""
    for path in sorted(folder.iterdir()):
        number = next(ids)
        if path.is_dir():
            _add_tree(_element(parent, "Directory", Id=f"d{number}", Name=path.name), path, base, ids, components)
        else:
            component = _element(parent, "Component", Id=f"c{number}", Guid="*", Win64="yes")
            _element(component, "File", Id=f"f{number}", Source=os.path.relpath(path, base), KeyPath="yes")
            components.append(f"c{number}")


def wxs(folder: Path, icon: Path, base: Path, version: str = __version__) -> ET.ElementTree:
    """The WiX source of the installer of ``folder`` (the one-folder build), its paths relative to ``base``."""
    wix = ET.Element("Wix", xmlns="http://schemas.microsoft.com/wix/2006/wi")
    product = _element(
        wix,
        "Product",
        Id="*",
        Name="Ollacache",
        Language="1033",
        Version=version,
        Manufacturer="Ollacache contributors",
        UpgradeCode=UPGRADE_CODE,
    )
    _element(
        product,
        "Package",
        InstallerVersion="500",
        Compressed="yes",
        InstallScope="perUser",
        Description="Ollacache: a cache in front of Ollama",
    )
    _element(product, "Media", Id="1", Cabinet="ollacache.cab", EmbedCab="yes")
    _element(product, "MajorUpgrade", DowngradeErrorMessage="A newer version of Ollacache is already installed.")
    # an installed product of this very version is removed first too: a rebuilt installer is a new product whose
    # files are the same components, which its uninstall would otherwise leave in place for the older one
    upgrade = _element(product, "Upgrade", Id=UPGRADE_CODE)
    _element(upgrade, "UpgradeVersion", Minimum=version, IncludeMinimum="yes", Property="SAME_VERSION_FOUND")
    _element(product, "Icon", Id="ollacache.ico", SourceFile=os.path.relpath(icon, base))
    _element(product, "Property", Id="ARPPRODUCTICON", Value="ollacache.ico")
    _element(product, "Property", Id="STARTATLOGIN", Secure="yes")
    root = _element(product, "Directory", Id="TARGETDIR", Name="SourceDir")
    programs = _element(
        _element(root, "Directory", Id="LocalAppDataFolder"), "Directory", Id="Programs", Name="Programs"
    )
    install = _element(programs, "Directory", Id="INSTALLDIR", Name="Ollacache")
    components: list[str] = []
    _add_tree(install, folder, base, itertools.count(1), components)

    menu = _element(_element(root, "Directory", Id="ProgramMenuFolder"), "Component", Id="menu", Guid="*")
    _element(
        menu,
        "Shortcut",
        Id="app",
        Name="Ollacache",
        Target=f"[INSTALLDIR]{APP_EXE}",
        WorkingDirectory="INSTALLDIR",
        Icon="ollacache.ico",
        Description="Cache for Ollama, in the tray",
    )
    _element(
        menu,
        "Shortcut",
        Id="uninstall",
        Name="Uninstall Ollacache",
        Target="[System64Folder]msiexec.exe",
        Arguments="/x [ProductCode]",
        Description="Remove Ollacache (its cache and settings are kept)",
    )
    _element(
        menu,
        "RegistryValue",
        Root="HKCU",
        Key=r"Software\Ollacache\Installer",
        Name="menu",
        Type="integer",
        Value="1",
        KeyPath="yes",
    )
    login = _element(install, "Component", Id="login", Guid="*", Win64="yes")
    _element(
        login,
        "RegistryValue",
        Root="HKCU",
        Key=RUN_KEY,
        Name=RUN_VALUE,
        Type="string",
        Value=f'"[INSTALLDIR]{APP_EXE}" --hidden',
        KeyPath="yes",
    )
    components.append("menu")

    # removes the Run value whoever wrote it (the app's switch or STARTATLOGIN); ignored when there is none
    _element(product, "CustomAction", Id="FindReg", Property="REGEXE", Value="[System64Folder]reg.exe")
    _element(
        product,
        "CustomAction",
        Id="ForgetLogin",
        Property="REGEXE",
        Return="ignore",
        ExeCommand=f"delete HKCU\\{RUN_KEY} /v {RUN_VALUE} /f",
    )
    sequences = {name: _element(product, name) for name in ("InstallUISequence", "InstallExecuteSequence")}
    sequence = sequences["InstallExecuteSequence"]
    _element(sequence, "Custom", Action="FindReg", Before="ForgetLogin").text = 'REMOVE="ALL"'
    # not when an upgrade removes the older version: the user's choice stays
    _element(
        sequence, "Custom", Action="ForgetLogin", After="InstallInitialize"
    ).text = 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE'

    feature = _element(product, "Feature", Id="app", Level="1", Title="Ollacache")
    for component in components:
        _element(feature, "ComponentRef", Id=component)
    # start at login: a feature above the default install level, raised to it when STARTATLOGIN=1 is given
    # (wixl has no feature or component conditions)
    at_login = _element(product, "Feature", Id="login", Level=LOGIN_LEVEL, Title="Start at login")
    _element(at_login, "ComponentRef", Id="login")
    _element(product, "CustomAction", Id="WantLogin", Property="INSTALLLEVEL", Value=LOGIN_LEVEL)
    for name in ("InstallUISequence", "InstallExecuteSequence"):
        _element(
            sequences[name], "Custom", Action="WantLogin", Before="CostFinalize"
        ).text = "STARTATLOGIN=1 AND NOT Installed"
    ET.indent(wix)
    return ET.ElementTree(wix)


def msi_table(msi: Path, name: str) -> list[dict[str, str]]:
    """The rows of table ``name`` of ``msi``, by column name, as msitools' ``msiinfo export`` gives them (its
    first three lines are the column names, types and key)."""
    lines = subprocess.run(
        ["msiinfo", "export", str(msi), name], text=True, capture_output=True, check=True
    ).stdout.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:]]


def write_msi(folder: Path, icon: Path, out: Path, version: str = __version__) -> Path:
    """Write the installer of ``folder`` into ``out``; its path. A missing ``wixl`` or executable is a
    :class:`BuildError` saying so."""
    if shutil.which("wixl") is None:
        raise BuildError("wixl was not found: install msitools' wixl (Debian: apt install wixl)")
    for name in (APP_EXE, CLI_EXE):
        if not (folder / name).is_file():
            raise BuildError(f"{folder} holds no {name}: is it a Windows build?")
    out.mkdir(parents=True, exist_ok=True)
    source = out / "ollacache.wxs"
    wxs(folder.resolve(), icon.resolve(), out.resolve(), version).write(source, encoding="utf-8", xml_declaration=True)
    msi = out / msi_name(version)
    msi.unlink(missing_ok=True)
    run(["wixl", "--arch", "x64", "--output", msi.name, source.name], cwd=out)
    if not msi.is_file():
        raise BuildError(f"wixl ran but wrote no {msi.name}")
    return msi


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the one-folder Windows build (holding OllacacheApp.exe)")
    parser.add_argument("--icon", type=Path, help="the .ico (default: build.py's, beside the folder)")
    parser.add_argument("--out", type=Path, help="where the .msi goes (default: beside the folder)")
    args = parser.parse_args(argv)
    icon = args.icon or args.folder.parent / "work" / "icons" / "ollacache.ico"
    try:
        print("installer:", write_msi(args.folder, icon, args.out or args.folder.parent))
    except BuildError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
