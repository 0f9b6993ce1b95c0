"""What this machine is: CPU cores and their kinds, SIMD level, RAM, GPUs and CPU limits.

`detect` asks the OS the way each platform allows — ``/sys`` and ``/proc`` on Linux (`core.hardware.linux`),
``sysctl`` on macOS (`core.hardware.macos`), ``GetLogicalProcessorInformationEx`` on Windows
(`core.hardware.windows`) — and ``nvidia-smi`` for NVIDIA GPUs (`core.hardware.gpu`). The Linux root comes from
``OLLACACHE_HW_ROOT`` (default ``/``) and commands run through an injectable runner, so tests detect
recorded machines. Detection never raises for a missing file or tool: what cannot be read is reported
as unknown, or falls back to psutil's counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from core.hardware import linux as hw_linux
from core.hardware import macos as hw_macos
from core.hardware import windows as hw_windows
from core.hardware.cpu import Core, CpuLimit, CpuTopology
from core.hardware.gpu import NVIDIA_SMI, Gpu, parse_nvidia_smi

ROOT_ENV = "OLLACACHE_HW_ROOT"
COMMAND_TIMEOUT_S = 10.0
OS_NAMES = {"linux": "linux", "darwin": "macos", "win32": "windows"}

Runner = Callable[[Sequence[str]], str]
"""Runs a command and returns its standard output; raises OSError (e.g. FileNotFoundError) when the
tool is missing and subprocess.SubprocessError when it fails or times out."""


def run_command(args: Sequence[str]) -> str:
    """The default `Runner`: the tool from PATH, at most `COMMAND_TIMEOUT_S` seconds.

    Raises:
        FileNotFoundError: the tool is not on PATH.
        subprocess.CalledProcessError: it exited with a non-zero status.
        subprocess.TimeoutExpired: it took longer than the timeout.
    """
    if shutil.which(args[0]) is None:
        raise FileNotFoundError(f"{args[0]} is not on PATH")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=True).stdout


@dataclass(frozen=True)
class Hardware:
    """A detected machine.

    Attributes:
        os: ``"linux"``, ``"macos"``, ``"windows"`` (or ``sys.platform`` for others).
        cpu: its cores, model and SIMD support.
        memory_bytes: total RAM in bytes, or None when unknown.
        gpus: the GPUs a tool reported (none when no tool did).
        cpu_limit: a cgroup quota or affinity mask restricting this process, or None.
    """

    os: str
    cpu: CpuTopology
    memory_bytes: int | None
    gpus: tuple[Gpu, ...] = ()
    cpu_limit: CpuLimit | None = None

    @property
    def logical_cpus(self) -> int:
        return self.cpu.logical_cpus

    @property
    def physical_cores(self) -> int:
        return self.cpu.physical_cores

    @property
    def performance_cores(self) -> int:
        return self.cpu.performance_cores

    @property
    def efficiency_cores(self) -> int:
        return self.cpu.efficiency_cores

    def to_json(self) -> dict[str, Any]:
        """The detected facts as JSON-ready values (the top of ``ollacache hardware --json``)."""
        limit = self.cpu_limit
        return {
            "os": self.os,
            "cpu_model": self.cpu.model,
            "logical_cpus": self.logical_cpus,
            "physical_cores": self.physical_cores,
            "performance_cores": self.performance_cores,
            "efficiency_cores": self.efficiency_cores,
            "core_types_source": self.cpu.core_types_source,
            "simd": self.cpu.simd,
            "simd_extras": list(self.cpu.simd_extras),
            "memory_bytes": self.memory_bytes,
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "cpu_limit": None
            if limit is None
            else {
                "quota_cpus": limit.quota_cpus,
                "quota_source": limit.quota_source,
                "allowed_cpus": None if limit.allowed_cpus is None else list(limit.allowed_cpus),
            },
        }


def nvidia_gpus(run: Runner) -> tuple[Gpu, ...]:
    """NVIDIA GPUs as ``nvidia-smi`` lists them; none when it is missing, fails or says nothing useful."""
    try:
        return parse_nvidia_smi(run(NVIDIA_SMI))
    except (OSError, subprocess.SubprocessError, UnicodeError):
        return ()


def _generic_cpu() -> CpuTopology:
    """Counts from psutil, all cores taken as performance cores: when the OS-specific way failed."""
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = min(psutil.cpu_count(logical=False) or logical, logical)
    per_core = max(logical // physical, 1)
    return CpuTopology(cores=tuple(Core(tuple(range(i * per_core, (i + 1) * per_core))) for i in range(physical)))


def _detect_macos(run: Runner) -> Hardware:
    try:
        values = hw_macos.parse_sysctl(run(hw_macos.SYSCTL_COMMAND))
    except (OSError, subprocess.SubprocessError, UnicodeError):
        values = {}
    if not values:
        return Hardware("macos", _generic_cpu(), psutil.virtual_memory().total)
    return Hardware("macos", hw_macos.read_cpu(values), hw_macos.read_memory(values), hw_macos.read_gpus(values))


def _detect_windows(run: Runner) -> Hardware:  # pragma: no cover - Windows only
    try:
        cpu = hw_windows.read_cpu()
    except (OSError, ValueError):
        cpu = _generic_cpu()
    return Hardware("windows", cpu, psutil.virtual_memory().total, nvidia_gpus(run))


def detect(root: Path | None = None, *, platform: str | None = None, run: Runner | None = None) -> Hardware:
    """Detects this machine, or a recorded one.

    Args:
        root: Linux only: the directory holding ``sys/`` and ``proc/``; default ``$OLLACACHE_HW_ROOT``,
            else ``/``. Ignored elsewhere.
        platform: a ``sys.platform`` value (``"linux"``, ``"darwin"``, ``"win32"``); default this one.
        run: runs ``nvidia-smi`` and (on macOS) ``sysctl``; default `run_command`. Tests pass recorded
            output; a runner that raises OSError or SubprocessError means the tool is missing or failed.

    Returns:
        The machine; never raises for a missing file or tool.
    """
    platform = platform or sys.platform
    run = run or run_command
    if platform.startswith("linux"):
        root = root if root is not None else Path(os.environ.get(ROOT_ENV) or "/")
        cpu = hw_linux.read_cpu(root)
        online = tuple(cpu_id for core in cpu.cores for cpu_id in core.cpus)
        return Hardware(
            "linux", cpu, hw_linux.read_memory(root), nvidia_gpus(run), hw_linux.read_cpu_limit(root, online)
        )
    if platform == "darwin":
        return _detect_macos(run)
    if platform == "win32":  # pragma: no cover - Windows only
        return _detect_windows(run)
    return Hardware(OS_NAMES.get(platform, platform), _generic_cpu(), psutil.virtual_memory().total, nvidia_gpus(run))
