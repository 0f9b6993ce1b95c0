"""Work done once in a test run however pytest-xdist schedules the tests that need it, and a lock for what the
whole machine has only one of.

Grouping tests onto one worker is a scheduling hint, not a guarantee: pytest 9.2 made pytest-xdist's
``xdist_group`` a silent no-op (pytest-xdist #1386), and two workers then each ran the Linux build at once,
sharing PyInstaller's cache. So what must happen once is guarded here, by a file lock in the folder that every
worker of the run shares: the first test to ask does the work, the others wait for it and read its result.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

JsonObject = dict[str, Any]


def run_folder(factory: pytest.TempPathFactory) -> Path:
    """The temp folder of this whole run: under pytest-xdist, the one that holds every worker's own."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    factory: pytest.TempPathFactory, name: str, make: Callable[[Path], JsonObject]
) -> tuple[Path, JsonObject]:
    """``make(folder)`` run once in this test run, in a folder of its own; the folder and what it returned.

    Every call of ``make`` is written to ``runs.jsonl`` in the folder (see :func:`runs_of`), so a test can show
    that it ran once.
    """
    root = run_folder(factory)
    folder = root / name
    done = root / f"{name}.json"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            with open(folder / "runs.jsonl", "a") as runs:
                runs.write(
                    json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "pid": os.getpid()}) + "\n"
                )
            done.write_text(json.dumps(make(folder)))
    return folder, json.loads(done.read_text())


def runs_of(folder: Path) -> list[JsonObject]:
    """Each time the work of a :func:`once_per_run` folder was done: the worker and the process."""
    return [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]


@contextmanager
def machine_wide(name: str) -> Iterator[None]:
    """Held by one test at a time on this machine, whatever the run or worker: for fixed resources such as
    Ollama's default ports."""
    with FileLock(Path(tempfile.gettempdir()) / f"ollacache-tests-{name}.lock"):
        yield
