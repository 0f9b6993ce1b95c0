"""The installer scripts that run only on other systems (Inno Setup on Windows, the release workflow on
GitHub's runners), checked here against what they must agree with: the app's own start-at-login entry and
the artefacts packaging/build.py makes."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import yaml

from core import __version__
from desktop.autostart import APP_NAME, RUN_KEY, launch_command, split_run_value

ROOT = Path(__file__).resolve().parents[1]

ISS = (ROOT / "packaging" / "windows" / "ollacache.iss").read_text()
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
ARTEFACTS = {  # what build.py writes on each runner
    "ubuntu-22.04": [f"ollacache-{__version__}-linux-x86_64.tar.gz", f"ollacache_{__version__}_amd64.deb"],
    "windows-2022": [f"Ollacache-{__version__}-setup.exe"],
    "macos-14": [f"Ollacache-{__version__}.dmg"],
}


def test_the_installers_start_at_login_is_the_entry_the_app_writes_and_reads() -> None:
    """Ticked in the installer, "start at login" shows as on, and hidden, in the app's settings."""
    [line] = [line for line in ISS.replace("\\\n", "").splitlines() if line.startswith("Root: HKCU") and "Run" in line]
    fields = dict(re.findall(r'(\w+): ("(?:[^"]|"")*"|[^;]+)', line))
    assert fields["Subkey"].strip().strip('"') == RUN_KEY
    assert fields["ValueName"].strip().strip('"') == APP_NAME
    app = r"C:\Users\Ana Lopez\AppData\Local\Programs\Ollacache"  # a space in the path, as is common
    value = fields["ValueData"].strip()[1:-1].replace('""', '"').replace("{app}", app)
    assert split_run_value(value) == launch_command(True, frozen=True, executable=app + r"\OllacacheApp.exe")


def test_the_installer_is_named_as_build_py_expects() -> None:
    assert "OutputBaseFilename=Ollacache-{#AppVersion}-setup" in ISS
    assert re.search(r'Filename: "\{app\}\\OllacacheApp\.exe"', ISS)  # the windowed executable of the spec


def test_the_release_workflow_builds_on_each_os_and_uploads_what_build_py_makes() -> None:
    job = WORKFLOW["jobs"]["build"]
    matrix = {entry["os"]: entry["artefacts"].split() for entry in job["strategy"]["matrix"]["include"]}
    assert set(matrix) == set(ARTEFACTS)
    for runner, patterns in matrix.items():
        for name in ARTEFACTS[runner]:
            assert any(fnmatch(f"dist/{name}", pattern) for pattern in patterns), (runner, name)
    steps = {step.get("name"): step for step in job["steps"]}
    assert steps["Build and smoke-test"]["run"] == "python packaging/build.py --out dist"


def test_the_release_workflow_installs_what_the_linux_build_needs() -> None:
    [apt] = [step["run"] for step in WORKFLOW["jobs"]["build"]["steps"] if "apt-get install" in step.get("run", "")]
    packages = set(apt.split())
    # the trim's patchelf and icupkg (cc and binutils come with the runner), the .deb's checks, Qt's xcb
    assert {"patchelf", "icu-devtools", "lintian", "desktop-file-utils", "libxcb-cursor0"} <= packages
