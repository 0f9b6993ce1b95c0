"""What the suite does once per run (the Linux build) happens once however pytest-xdist spreads its tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

USES_IT = """
import json, os
import pytest
from tests.once_per_run import once_per_run

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return once_per_run(tmp_path_factory, "work", lambda folder: {"by": os.getpid()})

@pytest.mark.parametrize("n", range(6))
def test_it(made, n):
    folder, result = made
    with open(folder.parent / "seen.jsonl", "a") as seen:
        seen.write(json.dumps({"worker": os.environ["PYTEST_XDIST_WORKER"], "by": result["by"]}) + "\\n")
"""


def test_work_done_once_per_run_is_done_once_when_its_tests_run_on_two_workers(tmp_path: Path) -> None:
    for module in ("test_one.py", "test_two.py"):
        (tmp_path / module).write_text(USES_IT)
    basetemp = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "load",
            "-p",
            "no:cacheprovider",
            f"--basetemp={basetemp}",
            "-q",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "12 passed" in done.stdout, done.stdout + done.stderr
    seen = [json.loads(line) for line in (basetemp / "seen.jsonl").read_text().splitlines()]
    assert {line["worker"] for line in seen} == {"gw0", "gw1"}  # the tests were spread over both workers
    assert len({line["by"] for line in seen}) == 1  # and all of them got the one result
    assert len((basetemp / "work" / "runs.jsonl").read_text().splitlines()) == 1
