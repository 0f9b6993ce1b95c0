"""The CPU as detection reports it, on every OS: its cores, their kind, and its SIMD level.

Each platform reader (`core.hardware.linux`, `core.hardware.macos`, `core.hardware.windows`) turns what its OS says
into a
`CpuTopology`: a tuple of physical cores, each with the ids of its hardware threads (logical CPUs) and
whether it is an efficiency core. Counting — logical CPUs, physical cores, performance and efficiency
cores — happens here once, so the platforms cannot disagree on what the numbers mean.

SIMD feature names follow Linux's ``/proc/cpuinfo`` spelling (``avx2``, ``avx512f``, ``asimd``,
``asimddp``...); the macOS and Windows readers translate their own names into these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Best level first: the first whose flag the CPU has names its SIMD level.
SIMD_LEVELS: tuple[tuple[str, str], ...] = (
    ("avx512", "avx512f"),
    ("avx2", "avx2"),
    ("avx", "avx"),
    ("sse4.2", "sse4_2"),
    ("sve2", "sve2"),
    ("sve", "sve"),
    ("neon", "asimd"),
)
# Further features that matter to llama.cpp's kernels, reported alongside the level.
SIMD_EXTRAS: tuple[str, ...] = (
    "fma",
    "f16c",
    "avx_vnni",
    "avx512_vnni",
    "avx512_bf16",
    "amx_int8",
    "asimddp",
    "i8mm",
    "bf16",
)


@dataclass(frozen=True)
class Core:
    """One physical core.

    Attributes:
        cpus: ids of its hardware threads (logical CPUs), ascending; two or more means SMT/hyperthreading.
        efficiency: True for an efficiency core (Intel E-core or LP E-core, ARM LITTLE, Apple E-core).
    """

    cpus: tuple[int, ...]
    efficiency: bool = False


@dataclass(frozen=True)
class CpuTopology:
    """What the CPU is: its cores and model, and its SIMD support.

    Attributes:
        cores: every online physical core, in the order of their first logical CPU.
        model: the marketing name (``"AMD Ryzen 9 7950X 16-Core Processor"``), or None when unknown.
        simd: the best SIMD level (one of `SIMD_LEVELS`' names), or ``"unknown"``.
        simd_extras: further features present, from `SIMD_EXTRAS`.
        core_types_source: where the performance/efficiency split came from (e.g.
            ``"/sys/devices/cpu_atom/cpus"``), or None when all cores are one kind.
    """

    cores: tuple[Core, ...]
    model: str | None = None
    simd: str = "unknown"
    simd_extras: tuple[str, ...] = ()
    core_types_source: str | None = None

    @property
    def logical_cpus(self) -> int:
        """Hardware threads over all cores."""
        return sum(len(core.cpus) for core in self.cores)

    @property
    def physical_cores(self) -> int:
        return len(self.cores)

    @property
    def performance_cores(self) -> int:
        """Physical cores that are not efficiency cores (all of them on a CPU without core types)."""
        return sum(1 for core in self.cores if not core.efficiency)

    @property
    def efficiency_cores(self) -> int:
        return sum(1 for core in self.cores if core.efficiency)


@dataclass(frozen=True)
class CpuLimit:
    """What this process may use of the CPU, when something restricts it.

    Attributes:
        quota_cpus: a cgroup CPU quota in CPUs (quota / period: ``1.5`` = one and a half CPUs of time),
            or None when there is no quota.
        quota_source: the file the quota came from, e.g. ``"cgroup v2 cpu.max"``.
        allowed_cpus: logical CPU ids in the affinity mask, or None when every online CPU is allowed.
    """

    quota_cpus: float | None = None
    quota_source: str | None = None
    allowed_cpus: tuple[int, ...] | None = None


def parse_cpulist(text: str) -> tuple[int, ...]:
    """Logical CPU ids from a kernel cpulist such as ``"0-3,8,10-11"`` (empty text: none), ascending.

    Raises:
        ValueError: on text that is not a cpulist.
    """
    ids: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        ids.update(range(int(first), int(last or first) + 1))
    return tuple(sorted(ids))


def format_cpulist(cpus: Iterable[int]) -> str:
    """The kernel's cpulist spelling of some CPU ids: ``(0, 1, 2, 3, 8)`` -> ``"0-3,8"``."""
    ranges: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


def simd_from_features(features: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The SIMD level and extras of a CPU with these feature flags (cpuinfo spelling, any case)."""
    present = {feature.lower() for feature in features}
    level = next((name for name, flag in SIMD_LEVELS if flag in present), "unknown")
    return level, tuple(extra for extra in SIMD_EXTRAS if extra in present)
