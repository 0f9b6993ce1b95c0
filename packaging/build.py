"""Build Ollacache for this OS with PyInstaller, then its installers, then smoke-test what was built.

    python packaging/build.py [--out DIR]

Linux: ``DIR/ollacache/`` (the one-folder build), ``ollacache-VERSION-linux-x86_64.tar.gz`` and
``ollacache_VERSION_amd64.deb``; Windows: the folder (its installer, an MSI, is made from it on Linux by
``packaging/windows_msi.py``); macOS: ``Ollacache.app`` and ``Ollacache-VERSION.dmg`` (``hdiutil``). Each built binary
is run with
``--version`` and ``selftest``; the ``.deb`` is unpacked with ``dpkg -x`` into a scratch root and its binary run
the same way. On Linux the build is trimmed first (Qt's ICU data, the build machine's RUNPATHs) and the .deb
must be lintian clean. The sizes are printed against the budget (Linux's; elsewhere printed only). Exit 0 when
all passed, 1 when a step or a smoke test failed, 2 when everything works but a size is over its budget.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from packaging_deb import menu_files, write_deb_tree  # noqa: E402
from packaging_icu import trim_icu_data  # noqa: E402
from packaging_pe import WINDOWS_EXECUTABLES, subsystem_problems  # noqa: E402
from packaging_runpath import clear_foreign_runpaths  # noqa: E402
from packaging_steps import BuildError, run  # noqa: E402

from core import __version__  # noqa: E402

MIB = 1024 * 1024
BUDGET_MIB = {"folder": 135, "tar.gz": 55, "deb": 40}


@dataclass
class Size:
    """One artefact's size against its budget."""

    label: str
    path: Path
    size: int
    budget_mib: int

    @property
    def over(self) -> bool:
        return self.size > self.budget_mib * MIB

    def line(self) -> str:
        verdict = "OVER" if self.over else "ok"
        return (
            f"{self.label:<10} {self.size / MIB:7.1f} MiB  (budget {self.budget_mib} MiB)  {verdict}  {self.path.name}"
        )


def tree_size(folder: Path) -> int:
    """Bytes of the regular files under a folder (symlinks not followed)."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def pyinstaller(out: Path) -> Path:
    """The one-folder build of ``packaging/ollacache.spec`` into ``out``; the folder (or the .app on macOS).

    Everything the build writes stays under ``out/work``, PyInstaller's cache of processed binaries included
    (``PYINSTALLER_CONFIG_DIR``; its default is one folder per user, which two builds at once corrupt and which
    makes a build depend on what an earlier one left): each build starts from nothing.
    """
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    icons = work / "icons"
    from packaging_icons import write_platform_icons

    write_platform_icons(ROOT / "resources" / "icons", icons)
    env = {**os.environ, "PYINSTALLER_CONFIG_DIR": str(work / "pyinstaller-cache")}
    run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            out,
            "--workpath",
            work,
            ROOT / "packaging" / "ollacache.spec",
            "--",
            "--icons",
            icons,
        ],
        cwd=ROOT,
        env=env,
    )
    return out / ("Ollacache.app" if sys.platform == "darwin" else "ollacache")


def smoke(binary: Path, label: str) -> list[str]:
    """Run ``--version`` and ``selftest`` with a built binary; the problems found (empty when both pass)."""
    problems: list[str] = []
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for args in (["--version"], ["selftest"]):
        try:
            done = subprocess.run([str(binary), *args], text=True, capture_output=True, env=env, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            problems.append(f"{label}: {' '.join(args)} could not run: {error}")
            continue
        output = (done.stdout + done.stderr).strip()
        print(f"{label}: ollacache {' '.join(args)} -> exit {done.returncode}\n  " + output.replace("\n", "\n  "))
        if done.returncode != 0:
            if "invalid choice: 'selftest'" in output:
                problems.append(f"{label}: the selftest command is missing from this build")
            else:
                problems.append(f"{label}: {' '.join(args)} exited {done.returncode}: {output[-400:]}")
        elif args == ["--version"] and __version__ not in output:
            problems.append(f"{label}: --version printed {output!r}, not {__version__}")
    return problems


def linux_installers(folder: Path, out: Path) -> tuple[list[Size], list[str]]:
    """The .tar.gz and the .deb of the folder; their sizes and the .deb's smoke test problems."""
    tarball = out / f"ollacache-{__version__}-linux-x86_64.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=9) as archive:
        archive.add(folder, arcname=f"ollacache-{__version__}")
        for source, path in menu_files(ROOT):  # the menu entry and icons, to copy into ~/.local/share
            archive.add(source, arcname=f"ollacache-{__version__}/share/{path}")
    root = out / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    write_deb_tree(root, folder, ROOT, __version__)
    deb = out / f"ollacache_{__version__}_amd64.deb"
    # one xz thread: dpkg-deb otherwise starts one per core, and a threaded encoder's output depends on how many
    # it has; one is as fast here (the data fits in one block) and gives the same bytes on every machine
    run(["dpkg-deb", "-Zxz", "-z9", "--threads-max=1", "--root-owner-group", "--build", root, deb])
    problems: list[str] = []
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(
            ["desktop-file-validate", str(root / "usr/share/applications/ollacache.desktop")],
            text=True,
            capture_output=True,
        )
        if done.returncode != 0 or done.stdout.strip():
            problems.append(f"desktop-file-validate: {done.stdout}{done.stderr}")
    if shutil.which("lintian"):
        done = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)], text=True, capture_output=True)
        tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:")]
        print("lintian: clean" if not tags else f"lintian: {len(tags)} errors and warnings", flush=True)
        if tags:
            problems.append("lintian:\n  " + "\n  ".join(tags))
    else:
        print("lintian: not installed, the .deb was not checked (apt install lintian)")
    with tempfile.TemporaryDirectory(prefix="ollacache-deb-") as scratch:
        run(["dpkg", "-x", deb, scratch])
        problems += smoke(Path(scratch) / "usr/lib/ollacache/ollacache", "deb")
    sizes = [
        Size("tar.gz", tarball, tarball.stat().st_size, BUDGET_MIB["tar.gz"]),
        Size("deb", deb, deb.stat().st_size, BUDGET_MIB["deb"]),
    ]
    return sizes, problems


def macos_dmg(app: Path, out: Path) -> Path:
    """A compressed .dmg holding the .app and a link to /Applications."""
    stage = out / "dmg"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copytree(app, stage / app.name, symlinks=True)
    (stage / "Applications").symlink_to("/Applications")
    dmg = out / f"Ollacache-{__version__}.dmg"
    dmg.unlink(missing_ok=True)
    run(["hdiutil", "create", "-volname", "Ollacache", "-srcfolder", stage, "-ov", "-format", "UDZO", dmg])
    return dmg


def build(out: Path) -> int:
    """Every step for this OS; the exit code (see the module's docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    built = pyinstaller(out)
    if sys.platform.startswith("linux"):
        for library in sorted(built.glob("_internal/PySide6/Qt/lib/libicudata.so.*")):
            print(trim_icu_data(library), flush=True)
        cleared = clear_foreign_runpaths(built)
        print(f"RUNPATH: the build machine's paths removed from {len(cleared)} binaries", flush=True)
    sizes = [Size("folder", built, tree_size(built), BUDGET_MIB["folder"])]
    if sys.platform == "darwin":
        binary = built / "Contents" / "MacOS" / "ollacache"
    else:
        binary = built / ("ollacache.exe" if sys.platform == "win32" else "ollacache")
    problems = smoke(binary, "build")
    if sys.platform == "win32":  # a pipe-reading smoke test cannot tell a console program from a windowed one
        problems += subsystem_problems(built, WINDOWS_EXECUTABLES)
    if sys.platform.startswith("linux"):
        more, deb_problems = linux_installers(built, out)
        sizes += more
        problems += deb_problems
    elif sys.platform == "darwin":
        print("disk image:", macos_dmg(built, out))
    print("sizes:")
    for size in sizes:
        print("  " + size.line())
    for problem in problems:
        print("FAILED:", problem, file=sys.stderr)
    if problems:
        return 1
    if sys.platform.startswith("linux") and any(size.over for size in sizes):  # the budget is Linux's
        print("FAILED: over the size budget: " + ", ".join(s.label for s in sizes if s.over), file=sys.stderr)
        return 2
    print("build and smoke tests passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``--out`` and build; a failing step is reported on one line and exits 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the build and installers go")
    args = parser.parse_args(argv)
    try:
        return build(args.out.resolve())
    except BuildError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
