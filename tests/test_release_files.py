"""The release workflow, which runs only on GitHub's runners, checked here against what it must agree with: the
artefacts packaging/build.py makes on each OS, and the Windows installer made from the Windows build on Linux
(packaging/windows_msi.py, whose own tests are in tests/test_windows_msi.py)."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import yaml

from core import __version__

ROOT = Path(__file__).resolve().parents[1]

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
ARTEFACTS = {  # what build.py writes on each runner
    "ubuntu-22.04": [f"ollacache-{__version__}-linux-x86_64.tar.gz", f"ollacache_{__version__}_amd64.deb"],
    "windows-2022": ["ollacache/ollacache.exe", "ollacache/OllacacheApp.exe", "work/icons/ollacache.ico"],
    "macos-14": [f"Ollacache-{__version__}.dmg"],
}


def test_the_release_workflow_builds_on_each_os_and_uploads_what_build_py_makes() -> None:
    job = WORKFLOW["jobs"]["build"]
    matrix = {entry["os"]: entry["artefacts"].split() for entry in job["strategy"]["matrix"]["include"]}
    assert set(matrix) == set(ARTEFACTS)
    for runner, patterns in matrix.items():
        for name in ARTEFACTS[runner]:
            assert any(
                fnmatch(f"dist/{name}", pattern) or (pattern.endswith("/") and f"dist/{name}".startswith(pattern))
                for pattern in patterns
            ), (runner, name)  # a folder's files are uploaded with it
    steps = {step.get("name"): step for step in job["steps"]}
    assert steps["Build and smoke-test"]["run"] == "python packaging/build.py --out dist"


def test_the_release_workflow_installs_what_the_linux_build_needs() -> None:
    [apt] = [step["run"] for step in WORKFLOW["jobs"]["build"]["steps"] if "apt-get install" in step.get("run", "")]
    packages = set(apt.split())
    # the trim's patchelf and icupkg (cc and binutils come with the runner), the .deb's checks, Qt's xcb
    assert {"patchelf", "icu-devtools", "lintian", "desktop-file-utils", "libxcb-cursor0"} <= packages


def test_the_release_workflow_makes_the_msi_from_the_windows_build_on_linux() -> None:
    job = WORKFLOW["jobs"]["windows-installer"]
    assert job["needs"] == "build" and job["runs-on"].startswith("ubuntu")
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "apt-get install" in runs and "wixl" in runs
    assert "python packaging/windows_msi.py dist/ollacache --icon dist/work/icons/ollacache.ico --out dist" in runs
    [upload] = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    assert fnmatch(f"dist/Ollacache-{__version__}-x64.msi", upload["with"]["path"])
