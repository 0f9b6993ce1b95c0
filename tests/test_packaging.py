"""The Linux build: packaging/build.py run once in the test run into a temp dir, then its artefacts and smoke
tests checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from core import __version__
from core.control import running
from tests.fakes.ollama_server import FakeOllama
from tests.harness import wait_for
from tests.once_per_run import JsonObject, once_per_run, runs_of
from tests.real_display import Display, display, needs_display, quit_by_sigterm, serving  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux build")]


def run_build(folder: Path) -> JsonObject:
    """build.py with an empty cache folder of the user's: it must build from nothing and leave nothing there."""
    (folder / "user-cache").mkdir()
    command = [sys.executable, str(ROOT / "packaging" / "build.py"), "--out", str(folder / "out")]
    done = subprocess.run(
        command, text=True, capture_output=True, env={**os.environ, "XDG_CACHE_HOME": str(folder / "user-cache")}
    )
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The one run of build.py in this test run, shared by every check: its output folder and what it said."""
    pytest.importorskip("PyInstaller")
    folder, done = once_per_run(tmp_path_factory, "linux-build", run_build)
    return folder / "out", subprocess.CompletedProcess("build.py", done["returncode"], done["stdout"], done["stderr"])


def test_the_build_ran_once_in_this_run_with_a_cache_of_its_own(
    built: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, done = built
    assert len(runs_of(out.parent)) == 1
    assert (out / "work" / "pyinstaller-cache").is_dir(), done.stderr
    assert not (out.parent / "user-cache" / "pyinstaller").exists()


def test_the_folder_runs_and_says_its_version(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = built
    binary = out / "ollacache" / "ollacache"
    assert binary.is_file(), done.stderr
    assert f"build: ollacache --version -> exit 0\n  ollacache {__version__}" in done.stdout
    assert (
        subprocess.run([str(binary), "--version"], text=True, capture_output=True).stdout.strip()
        == f"ollacache {__version__}"
    )


def test_the_tarball_holds_the_folder(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = built
    with tarfile.open(out / f"ollacache-{__version__}-linux-x86_64.tar.gz") as archive:
        names = set(archive.getnames())
    assert f"ollacache-{__version__}/ollacache" in names
    assert f"ollacache-{__version__}/_internal/resources/icons/serving.svg" in names
    for menu in ("applications/ollacache.desktop", "icons/hicolor/48x48/apps/ollacache.png"):  # for ~/.local/share
        assert f"ollacache-{__version__}/share/{menu}" in names


def test_the_deb_puts_the_app_on_path_and_in_the_menu(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = built
    deb = out / f"ollacache_{__version__}_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], text=True, capture_output=True, check=True).stdout
    for path in (
        "./usr/bin/ollacache -> ../lib/ollacache/ollacache",
        "./usr/share/applications/ollacache.desktop",
        "./usr/share/icons/hicolor/48x48/apps/ollacache.png",
        "./usr/share/doc/ollacache/copyright",
        "./usr/share/doc/ollacache/changelog.gz",
        "./usr/lib/ollacache/ollacache",
        "./usr/share/man/man1/ollacache.1.gz",
    ):
        assert path in listing
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], text=True, capture_output=True).stdout
    assert "libxcb-cursor0" in depends and "libxkbcommon-x11-0" in depends
    # the libraries Debian ships are the system's, not copies (lintian's embedded-library)
    assert "zlib1g" in depends and "./usr/lib/ollacache/_internal/libz.so.1" not in listing
    assert f"deb: ollacache --version -> exit 0\n  ollacache {__version__}" in done.stdout
    assert "desktop-file-validate" not in done.stderr


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian is not installed (apt install lintian)")
def test_the_deb_is_lintian_clean(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = built
    assert "lintian: clean" in done.stdout, done.stderr
    deb = out / f"ollacache_{__version__}_amd64.deb"
    page = subprocess.run(
        f"dpkg-deb --fsys-tarfile {deb} | tar -xOf - ./usr/share/man/man1/ollacache.1.gz | zcat",
        shell=True,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    assert ".B selftest" in page and "OLLACACHE_PORT" in page  # the manual names every command and setting


def test_the_build_and_the_deb_pass_the_selftest(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = built
    assert "build: ollacache selftest -> exit 0" in done.stdout
    assert "deb: ollacache selftest -> exit 0" in done.stdout


def test_the_sizes_are_within_budget(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = built
    assert "sizes:" in done.stdout
    assert "OVER" not in done.stdout
    assert done.returncode == 0, done.stderr


QT_TEXT_CHECK = """
from PySide6.QtCore import QCollator, QDateTime, QLocale, QStringDecoder, QTimeZone
print(" ".join(sorted(["b", "\u00e9", "a", "B"], key=QCollator(QLocale("en_US")).sortKey)))
print(QLocale("tr_TR").toUpper("i"), QLocale("en_US").toUpper("stra\u00dfe"))
print(QTimeZone(b"Europe/Berlin").displayName(QDateTime(2026, 1, 15, 12, 0, 0)))
print(QLocale("de_DE").toString(1234567.5, "f", 1), QStringDecoder("Shift_JIS").isValid())
"""


def test_the_trimmed_icu_still_collates_cases_and_names_time_zones(
    built: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Qt run against the build's trimmed ICU data does what the app (and any Qt text) needs of ICU."""
    out, done = built
    trimmed = next((out / "ollacache" / "_internal" / "PySide6" / "Qt" / "lib").glob("libicudata.so.*"))
    assert f"ICU data trimmed: {trimmed.name} 30." in done.stdout
    assert trimmed.stat().st_size < 8 * 2**20
    (tmp_path / trimmed.name).write_bytes(trimmed.read_bytes())
    # the loader takes LD_LIBRARY_PATH before the wheel's RUNPATH: this Qt then reads the trimmed data
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    lines = subprocess.run(
        [sys.executable, "-c", QT_TEXT_CHECK], env=env, text=True, capture_output=True, check=True
    ).stdout.splitlines()
    assert lines[:3] == ["a b B \u00e9", "\u0130 STRASSE", "Central European Standard Time"]
    assert lines[3] == "1.234.567,5 False"  # Qt's own locale data still formats; legacy charsets are gone


@needs_display
def test_the_debs_tray_app_docks_serves_from_its_cache_and_quits(
    built: tuple[Path, subprocess.CompletedProcess[str]],
    display: Display,
    upstream: tuple[FakeOllama, str],
    tmp_path: Path,
) -> None:
    """The installed app as the menu entry starts it: on Debian's own libraries, Qt's kept plugins and the
    trimmed ICU, its icon docks in the tray, the dashboard opens, its engine (the same executable, ``serve``)
    caches, and SIGTERM quits both."""
    out, _ = built
    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", str(out / f"ollacache_{__version__}_amd64.deb"), str(root)], check=True)
    binary = root / "usr/lib/ollacache/ollacache"
    app = subprocess.Popen([str(binary)], env={**display.env, "OLLACACHE_UPSTREAM": upstream[1], "OLLACACHE_PORT": "0"})
    engine = serving(app)
    assert engine.cmdline()[:2] == [str(binary), "serve"]
    wait_for(lambda: display.docked_icons("Ollacache") == 1, "the icon in the tray")
    wait_for(lambda: display.shown_top_levels("Ollacache"), "the dashboard")
    url = running.read_url(Path(os.environ["OLLACACHE_CONFIG_DIR"]))
    body = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    verdicts = [httpx.post(f"{url}/api/chat", json=body, timeout=30).headers["x-cache"] for _ in range(2)]
    assert verdicts == ["MISS", "HIT"]
    quit_by_sigterm(app, engine)
