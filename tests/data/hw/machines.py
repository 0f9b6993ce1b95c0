"""The recorded machines of this directory, ready for detection: Linux trees, recorded tool output, and a
builder of Windows ``GetLogicalProcessorInformationEx`` buffers (see README.md)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.hardware.detect import Hardware, Runner, detect

DATA = Path(__file__).resolve().parent
MTL = "linux-intel-meteorlake-155h"
AMD = "linux-amd-ryzen9-7950x"
VM = "linux-vm-2core"
ARM = "linux-arm-rk3588"
LINUX_MACHINES = (MTL, AMD, VM, ARM)
NVIDIA_DRIVER_NOT_LOADED = 9  # nvidia-smi's exit status when it cannot talk to the driver


def output(name: str) -> str:
    """A recorded tool output, e.g. ``output("nvidia-smi/one-gpu.txt")``."""
    return (DATA / name).read_text(encoding="utf-8")


def recorded(outputs: Mapping[str, str | BaseException]) -> Runner:
    """A command runner answering from recorded outputs by tool name; other tools are not installed."""

    def run(args: Sequence[str]) -> str:
        answer = outputs.get(args[0])
        if answer is None:
            raise FileNotFoundError(f"{args[0]} is not on PATH")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return run


def nvidia_failing() -> subprocess.CalledProcessError:
    """What the default runner raises when nvidia-smi is installed but the driver is not loaded."""
    return subprocess.CalledProcessError(
        NVIDIA_DRIVER_NOT_LOADED, ["nvidia-smi"], output=output("nvidia-smi/driver-not-loaded.txt")
    )


def linux(name: str | Path, gpus: str | None = None) -> Hardware:
    """Detection on a recorded Linux tree (a name here or a path), with nvidia-smi output or without it."""
    root = name if isinstance(name, Path) else DATA / name
    return detect(root, platform="linux", run=recorded({"nvidia-smi": output(gpus)} if gpus else {}))


def copy_tree(name: str, destination: Path) -> Path:
    """A writable copy of a recorded tree, to add cgroup or affinity files to."""
    return Path(shutil.copytree(DATA / name, destination / name))


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


# --- Windows: SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX records, 64-bit layout -----------------------------
RELATION_PROCESSOR_CORE, RELATION_CACHE, RELATION_PROCESSOR_PACKAGE, RELATION_GROUP = 0, 2, 3, 4
CACHE_UNIFIED, CACHE_INSTRUCTION, CACHE_DATA = 0, 1, 2
LTP_PC_SMT = 1


def _affinity(cpus: Sequence[int]) -> bytes:
    """One GROUP_AFFINITY: KAFFINITY mask, WORD group, WORD reserved[3]."""
    return struct.pack("<QH6x", sum(1 << (cpu % 64) for cpu in cpus), cpus[0] // 64)


def _record(relationship: int, body: bytes) -> bytes:
    return struct.pack("<II", relationship, 8 + len(body)) + body


def core_record(cpus: Sequence[int], efficiency_class: int) -> bytes:
    """A RelationProcessorCore record: Flags, EfficiencyClass, Reserved[20], GroupCount, GroupMask."""
    flags = LTP_PC_SMT if len(cpus) > 1 else 0
    return _record(RELATION_PROCESSOR_CORE, struct.pack("<BB20xH", flags, efficiency_class, 1) + _affinity(cpus))


def cache_record(level: int, kind: int, size: int, cpus: Sequence[int]) -> bytes:
    """A RelationCache record: Level, Associativity, LineSize, CacheSize, Type, Reserved[18], GroupCount."""
    return _record(RELATION_CACHE, struct.pack("<BBHII18xH", level, 12, 64, size, kind, 1) + _affinity(cpus))


def build_processor_information(cores: Sequence[tuple[int, int]]) -> bytes:
    """A RelationAll buffer for a one-package, one-group CPU.

    Args:
        cores: ``(threads, efficiency_class)`` per core, in logical-processor order.
    """
    buffer, next_cpu, all_cpus = b"", 0, []
    for threads, efficiency_class in cores:
        cpus = list(range(next_cpu, next_cpu + threads))
        next_cpu += threads
        all_cpus += cpus
        buffer += core_record(cpus, efficiency_class)
        buffer += cache_record(1, CACHE_DATA, 48 * 1024, cpus) + cache_record(1, CACHE_INSTRUCTION, 32 * 1024, cpus)
        buffer += cache_record(2, CACHE_UNIFIED, 1280 * 1024, cpus)
    buffer += cache_record(3, CACHE_UNIFIED, 24 * 1024 * 1024, all_cpus)
    buffer += _record(RELATION_PROCESSOR_PACKAGE, struct.pack("<BB20xH", 0, 0, 1) + _affinity(all_cpus))
    mask = sum(1 << cpu for cpu in all_cpus)
    group = struct.pack("<HH20x", 1, 1) + struct.pack("<BB38xQ", len(all_cpus), len(all_cpus), mask)
    return buffer + _record(RELATION_GROUP, group)


def alder_lake_12900h() -> bytes:
    """Core i9-12900H on Windows 11: 6 P-cores with 2 threads (class 1), then 8 E-cores (class 0)."""
    return build_processor_information([(2, 1)] * 6 + [(1, 0)] * 8)
