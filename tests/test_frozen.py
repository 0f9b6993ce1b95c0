"""Running frozen: the command lines the app starts itself with, Ollama's environment, the frozen entry."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import __version__
from core.frozen import command, outside_environment, own_environment, tray_command
from core.supervision.environment import ollama_environment
from tests.fakes.ollama_server import FakeOllama
from tests.harness import SERVING

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "packaging" / "entry.py"
EXE = "/opt/Ollacache/ollacache"


def test_commands_from_source_run_this_python() -> None:
    assert command("serve", frozen=False, executable="/usr/bin/python3") == ["/usr/bin/python3", "-m", "core", "serve"]
    assert tray_command(False, frozen=False, executable="/usr/bin/python3") == ["/usr/bin/python3", "-m", "desktop"]
    assert tray_command(True, frozen=False, executable="/usr/bin/python3") == [
        "/usr/bin/python3",
        "-m",
        "desktop",
        "--hidden",
    ]


def test_commands_when_frozen_run_the_executable_itself() -> None:
    assert command("serve", "--port", "0", frozen=True, executable=EXE) == [EXE, "serve", "--port", "0"]
    assert tray_command(False, frozen=True, executable=EXE) == [EXE]
    assert tray_command(True, frozen=True, executable=EXE) == [EXE, "--hidden"]


def test_this_test_run_is_not_frozen() -> None:
    assert command("serve") == [sys.executable, "-m", "core", "serve"]


def test_the_tray_starts_its_engine_the_same_way() -> None:
    pytest.importorskip("PySide6")
    from desktop.engine_process import engine_command

    assert engine_command(frozen=True, executable=EXE) == [EXE, "serve"]
    assert engine_command() == [sys.executable, "-m", "core", "serve"]


def test_a_frozen_app_gives_ollama_the_library_path_from_before_the_bundle() -> None:
    inherited = {
        "PATH": "/usr/bin",
        "LD_LIBRARY_PATH": "/opt/Ollacache/_internal",
        "LD_LIBRARY_PATH_ORIG": "/usr/local/cuda/lib64",
    }
    assert outside_environment(inherited, frozen=True) == {
        "PATH": "/usr/bin",
        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
    }


def test_a_frozen_app_without_a_library_path_before_gives_ollama_none() -> None:
    inherited = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/Ollacache/_internal"}
    assert outside_environment(inherited, frozen=True) == {"PATH": "/usr/bin"}


def test_from_source_the_library_path_is_left_alone() -> None:
    inherited = {"LD_LIBRARY_PATH": "/home/me/lib", "LD_LIBRARY_PATH_ORIG": "/elsewhere"}
    assert outside_environment(inherited, frozen=False) == inherited


def test_another_frozen_instance_starts_afresh_with_the_users_library_path() -> None:
    inherited = {"LD_LIBRARY_PATH": "/opt/Ollacache/_internal:/home/me/lib", "LD_LIBRARY_PATH_ORIG": "/home/me/lib"}
    assert own_environment(inherited, frozen=True) == {
        "LD_LIBRARY_PATH": "/home/me/lib",
        "PYINSTALLER_RESET_ENVIRONMENT": "1",
    }
    assert own_environment(inherited, frozen=False) == inherited


def test_the_users_ollama_environment_wins_over_the_cleaning() -> None:
    inherited = {"LD_LIBRARY_PATH": "/opt/Ollacache/_internal", "HOME": "/home/me"}
    extra = {"LD_LIBRARY_PATH": "/opt/rocm/lib", "OLLAMA_HOST": "127.0.0.1:11435"}
    assert ollama_environment(inherited, extra, frozen=True) == {
        "HOME": "/home/me",
        "LD_LIBRARY_PATH": "/opt/rocm/lib",
        "OLLAMA_HOST": "127.0.0.1:11435",
    }


def test_the_entry_starts_the_tray_with_no_command_or_hidden_alone() -> None:
    wants_tray = runpy.run_path(str(ENTRY))["wants_tray"]
    assert wants_tray([]) and wants_tray(["--hidden"])
    assert not wants_tray(["serve"]) and not wants_tray(["tray", "--hidden"]) and not wants_tray(["--version"])


def _entry_env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_the_entry_with_arguments_is_the_ollacache_command() -> None:
    result = subprocess.run(
        [sys.executable, str(ENTRY), "--version"], cwd=ROOT, env=_entry_env(), capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == f"ollacache {__version__}"


def test_the_entry_without_a_display_serves_headless(upstream: tuple[FakeOllama, str]) -> None:
    _, url = upstream
    process = subprocess.Popen(
        [sys.executable, str(ENTRY)],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_entry_env(OLLACACHE_PORT="0", OLLACACHE_UPSTREAM=url),
    )
    assert process.stdout is not None
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            if SERVING.search(line):
                break
        assert any("no display" in line for line in output), "".join(output)
        assert any(SERVING.search(line) for line in output), "".join(output)
    finally:
        process.send_signal(signal.SIGTERM)
        process.stdout.close()
        code = process.wait()
    assert code == 0
