"""The engine stands alone: core/ never imports the GUI and works with PySide6 absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK_GUI = """
import importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'qasync', 'desktop'):
            raise ImportError(f'{name} is blocked: core must not need it')
sys.meta_path.insert(0, Block())
import core
for module in pkgutil.walk_packages(core.__path__, 'core.'):
    if module.name != 'core.__main__':
        __import__(module.name)
from core.cli.commands import main
assert main(['--version']) == 0
"""


def test_import_linter_contract_holds() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The engine never imports the GUI KEPT" in result.stdout
    for contract in ("Layers: the CLI above the engine", "Decisions are pure", "No import cycles"):
        assert contract in result.stdout
    assert "0 broken" in result.stdout


def test_every_core_module_imports_and_runs_with_the_gui_libraries_absent() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_GUI],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ollacache ")
