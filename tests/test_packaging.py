"""The Linux build: packaging/build.py run once into a temp dir, then its artefacts and smoke tests checked."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from core import __version__

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux build")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run of build.py, shared by every check."""
    pytest.importorskip("PyInstaller")
    out = tmp_path_factory.mktemp("build")
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--out", str(out)],
                          text=True, capture_output=True)
    return out, done


def test_the_folder_runs_and_says_its_version(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = built
    binary = out / "ollacache" / "ollacache"
    assert binary.is_file(), done.stderr
    assert f"build: ollacache --version -> exit 0\n  ollacache {__version__}" in done.stdout
    assert subprocess.run([str(binary), "--version"], text=True, capture_output=True).stdout.strip() \
        == f"ollacache {__version__}"


def test_the_tarball_holds_the_folder(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = built
    with tarfile.open(out / f"ollacache-{__version__}-linux-x86_64.tar.gz") as archive:
        names = set(archive.getnames())
    assert f"ollacache-{__version__}/ollacache" in names
    assert f"ollacache-{__version__}/_internal/resources/icons/serving.svg" in names


def test_the_deb_puts_the_app_on_path_and_in_the_menu(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = built
    deb = out / f"ollacache_{__version__}_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], text=True, capture_output=True, check=True).stdout
    for path in ("./usr/bin/ollacache -> ../lib/ollacache/ollacache", "./usr/share/applications/ollacache.desktop",
                 "./usr/share/icons/hicolor/48x48/apps/ollacache.png", "./usr/share/doc/ollacache/copyright",
                 "./usr/share/doc/ollacache/changelog.gz", "./usr/lib/ollacache/ollacache"):
        assert path in listing
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], text=True, capture_output=True).stdout
    assert "libxcb-cursor0" in depends and "libxkbcommon-x11-0" in depends
    assert f"deb: ollacache --version -> exit 0\n  ollacache {__version__}" in done.stdout
    assert "desktop-file-validate" not in done.stderr


def test_the_build_and_the_deb_pass_the_selftest(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = built
    assert "build: ollacache selftest -> exit 0" in done.stdout
    assert "deb: ollacache selftest -> exit 0" in done.stdout


@pytest.mark.xfail(reason="over budget: Qt's ICU (libicudata, 31 MiB) alone is a fifth of the folder", strict=True)
def test_the_sizes_are_within_budget(built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = built
    assert "sizes:" in done.stdout
    assert "OVER" not in done.stdout
    assert done.returncode == 0, done.stderr
