"""The code's style is the tools', not a reviewer's: ruff's lint and its formatter (settings in pyproject.toml)
pass over every Python file of the repository, so CI enforces them with the rest of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = ["core", "desktop", "packaging", "tests", "bench"]


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", *PLACES], cwd=ROOT, text=True, capture_output=True
    )


def test_ruff_finds_nothing_to_say() -> None:
    done = ruff("check", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_file_is_formatted_as_ruff_formats_it() -> None:
    done = ruff("format", "--check")
    assert done.returncode == 0, f"run `.venv/bin/ruff format {' '.join(PLACES)}`:\n{done.stdout}{done.stderr}"
