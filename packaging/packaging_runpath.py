"""Drop the build machine's library paths from the frozen binaries' RUNPATH.

Python's extension modules, as compiled (by pyenv, say), carry a RUNPATH into the interpreter's own ``lib``
directory (``/root/.pyenv/versions/3.11.7/lib``): on a user's machine that path names nothing, or worse,
someone else's libraries. The frozen app finds its libraries in its own folder (the bootloader puts it on
the search path, and Qt's libraries look next to themselves through ``$ORIGIN``), so every RUNPATH entry
outside the folder is removed with ``patchelf`` and ``$ORIGIN`` entries are kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from packaging_steps import BuildError, run

ELF_MAGIC = b"\x7fELF"


def _is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == ELF_MAGIC


def own_runpath(runpath: str) -> str:
    """The entries of a RUNPATH that point inside the folder (``$ORIGIN``-relative), joined again."""
    return ":".join(entry for entry in runpath.split(":") if entry.startswith(("$ORIGIN", "${ORIGIN}")))


def clear_foreign_runpaths(folder: Path) -> list[Path]:
    """Rewrite the RUNPATH of every ELF file under ``folder`` that points outside it; the files changed."""
    if shutil.which("patchelf") is None:
        raise BuildError("patchelf is needed to clear the build machine's RUNPATHs (apt install patchelf)")
    changed: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file() or not _is_elf(path):
            continue
        runpath = run(["patchelf", "--print-rpath", path], echo=False).stdout.strip()
        kept = own_runpath(runpath)
        if runpath == kept:
            continue
        command = ["--set-rpath", kept] if kept else ["--remove-rpath"]
        run(["patchelf", *command, path], echo=False)
        changed.append(path)
    return changed
