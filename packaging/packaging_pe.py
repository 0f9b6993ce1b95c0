"""Which Windows subsystem an executable was linked for, read from its PE header: the console one (a terminal's
``ollacache --version`` prints) or the windowed one (the Start-menu entry opens no console). build.py checks
both executables of a Windows build with it, since a pipe-reading smoke test cannot tell them apart."""

from __future__ import annotations

import struct
from pathlib import Path

WINDOWS_GUI, WINDOWS_CUI = 2, 3  # IMAGE_SUBSYSTEM_WINDOWS_GUI and _CUI, from the PE format's documentation
SUBSYSTEM_NAMES = {WINDOWS_GUI: "windowed", WINDOWS_CUI: "console"}
WINDOWS_EXECUTABLES = {"ollacache.exe": WINDOWS_CUI, "OllacacheApp.exe": WINDOWS_GUI}  # the CLI, the tray app
_SUBSYSTEM_OFFSET = 68  # in the optional header, the same in PE32 and PE32+


def pe_subsystem(path: Path) -> int:
    """The subsystem field of the executable at ``path``; ValueError when it is no PE file."""
    data = path.read_bytes()[:4096]
    if data[:2] != b"MZ" or len(data) < 0x40:
        raise ValueError(f"{path.name} is not a Windows executable (no MZ header)")
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe : pe + 4] != b"PE\0\0":
        raise ValueError(f"{path.name} is not a Windows executable (no PE signature)")
    optional = pe + 4 + 20  # after the signature and the COFF header
    (subsystem,) = struct.unpack_from("<H", data, optional + _SUBSYSTEM_OFFSET)
    return int(subsystem)


def subsystem_problems(folder: Path, expected: dict[str, int]) -> list[str]:
    """Each executable of ``expected`` (file name: subsystem) that is missing or linked otherwise."""
    problems = []
    for name, wanted in expected.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing from {folder}")
            continue
        try:
            found = pe_subsystem(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        if found != wanted:
            problems.append(
                f"{name} is a {SUBSYSTEM_NAMES.get(found, str(found))} program, not a {SUBSYSTEM_NAMES[wanted]} one"
            )
    return problems
