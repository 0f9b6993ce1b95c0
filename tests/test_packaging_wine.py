"""A Windows program that hangs under Wine during the build is run once more, with the prefix's programs ended
first; one that hangs again fails the build, saying so. The programs here are real processes that hang (a stand-in
for Wine runs them as Linux programs), so this runs without Wine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import packaging_module

HANGS_FIRST = """import pathlib, sys, time
ran = pathlib.Path(sys.argv[1])
times = int(ran.read_text()) + 1 if ran.exists() else 1
ran.write_text(str(times))
if times <= int(sys.argv[2]):
    time.sleep(600)  # a program that hangs: ended by the timeout
print("built after", times)
"""


@pytest.fixture
def wine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    module = packaging_module("packaging_wine", monkeypatch)

    class StandIn(module.Wine):  # type: ignore[name-defined, misc]
        kills = 0

        def command(self, argv: Any) -> list[str]:
            return [sys.executable, *map(str, argv)]

        def kill(self) -> None:
            self.kills += 1

    return StandIn(tmp_path / "prefix")


def test_a_program_that_hangs_once_is_run_once_more_after_the_prefix_is_ended(wine: Any, tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(HANGS_FIRST)
    done = wine.run_again_if_hung([script, tmp_path / "ran", "1"], timeout=2)
    assert done.stdout.strip() == "built after 2" and wine.kills == 1


def test_a_program_that_hangs_twice_fails_the_build(wine: Any, tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(HANGS_FIRST)
    with pytest.raises(Exception, match="did not finish within 2 s under Wine") as failure:
        wine.run_again_if_hung([script, tmp_path / "ran", "2"], timeout=2)
    assert type(failure.value).__name__ == "WineHung" and wine.kills == 1
    assert (tmp_path / "ran").read_text() == "2"
