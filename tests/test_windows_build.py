"""The Windows build: packaging/wine_build.py run once in the test run, building the app and its installer under
Wine and using them as a Windows user would; each check it made is asserted here, with what it saw.

It never skips on Linux: the script installs what it needs (as root, as in CI) or fails saying what is missing.
Its Wine prefix and downloads are kept in the user's cache folder (``ollacache-wine``), empty in CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import __version__
from tests.once_per_run import JsonObject, once_per_run, runs_of

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Wine on Linux")]


def run_wine_build(folder: Path) -> JsonObject:
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "wine_build.py"), "--out", str(folder / "out")],
        text=True,
        capture_output=True,
    )
    report = folder / "out" / "windows-report.json"
    return {
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "report": json.loads(report.read_text()) if report.is_file() else {},
    }


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, JsonObject]:
    """The one run of wine_build.py in this test run: its output folder and what it reported."""
    folder, done = once_per_run(tmp_path_factory, "windows-build", run_wine_build)
    return folder / "out", done


def check(done: JsonObject, name: str) -> str:
    """What the named check saw; the test fails with the script's own words when it failed or never ran."""
    report = done["report"]
    entries = {entry["name"]: entry for entry in report.get("checks", [])}
    assert name in entries, report.get("error") or done["stderr"][-3000:]
    assert entries[name]["ok"], entries[name]["detail"]
    return str(entries[name]["detail"])


def test_the_windows_app_is_built_under_wine_once_and_passes_its_own_selftest(windows: tuple[Path, JsonObject]) -> None:
    out, done = windows
    assert len(runs_of(out.parent)) == 1
    assert "error" not in done["report"], done["report"]["error"]
    build = done["report"]["build_output"]
    assert "build: ollacache --version -> exit 0" in build
    assert "request 1: MISS" in build and "request 2: HIT" in build and "selftest passed" in build
    assert (out / "ollacache" / "ollacache.exe").is_file() and (out / "ollacache" / "OllacacheApp.exe").is_file()
    assert done["returncode"] == 0, done["stdout"][-3000:] + done["stderr"][-3000:]


def test_the_console_executable_answers_in_a_terminal(windows: tuple[Path, JsonObject]) -> None:
    assert f"printed 'ollacache {__version__}'" in check(windows[1], "console")


def test_serve_under_wine_answers_linux_clients_from_its_cache(windows: tuple[Path, JsonObject]) -> None:
    seen = check(windows[1], "serve")
    assert "MISS then HIT" in seen and "running.json removed" in seen


def test_the_tray_app_shows_its_dashboard_and_icon_and_quits_cleanly(windows: tuple[Path, JsonObject]) -> None:
    out, done = windows
    seen = check(done, "tray")
    assert "start at login wrote" in seen and "Quit: exit 0" in seen
    assert (out / "windows-tray.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # for a person to look at


def test_the_msi_installs_runs_and_uninstalls_leaving_nothing(windows: tuple[Path, JsonObject]) -> None:
    out, done = windows
    seen = check(done, "installer")
    assert "its selftest passed" in seen and "nothing left" in seen
    assert (out / f"Ollacache-{__version__}-x64.msi").is_file()
