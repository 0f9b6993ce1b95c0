"""macOS detection: the CPU, memory and Apple GPU from the output of ``sysctl hw machdep.cpu``.

The keys read (others are ignored): ``hw.logicalcpu``, ``hw.physicalcpu``, ``hw.memsize`` (bytes),
``hw.perflevel0.physicalcpu`` / ``hw.perflevel0.logicalcpu`` (performance cores on Apple silicon) and
``hw.perflevel1.*`` (efficiency cores), ``machdep.cpu.brand_string``, ``hw.optional.arm64`` and the
``hw.optional.*`` SIMD flags. Intel Macs have no perflevel1: all their cores are performance cores.
"""

from __future__ import annotations

from core.hardware.cpu import Core, CpuTopology, simd_from_features
from core.hardware.gpu import Gpu, apple_gpu

SYSCTL_COMMAND: tuple[str, ...] = ("sysctl", "hw", "machdep.cpu")

# sysctl flag -> the cpuinfo name `core.hardware.cpu` uses.
_FEATURES = {
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.avx1_0": "avx",
    "hw.optional.sse4_2": "sse4_2",
    "hw.optional.fma": "fma",
    "hw.optional.neon": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
}


def parse_sysctl(text: str) -> dict[str, str]:
    """``key: value`` lines (``sysctl``'s output format) as a dict; the first of a repeated key wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            values.setdefault(key.strip(), value.strip())
    return values


def _int(values: dict[str, str], key: str) -> int | None:
    text = values.get(key, "")
    return int(text) if text.isdigit() else None


def read_cpu(values: dict[str, str]) -> CpuTopology:
    """The CPU described by parsed sysctl values.

    Logical CPU ids are not reported by macOS; cores get consecutive ids, performance cores first.
    """
    logical = _int(values, "hw.logicalcpu") or _int(values, "hw.ncpu") or 1
    physical = _int(values, "hw.physicalcpu") or logical
    efficiency = _int(values, "hw.perflevel1.physicalcpu") or 0
    performance = _int(values, "hw.perflevel0.physicalcpu") or max(physical - efficiency, 1)
    levels = (
        (performance, _int(values, "hw.perflevel0.logicalcpu") or (logical - efficiency), False),
        (efficiency, _int(values, "hw.perflevel1.logicalcpu") or efficiency, True),
    )
    cores: list[Core] = []
    next_id = 0
    for count, threads, is_efficiency in levels:
        per_core = max(threads // count, 1) if count else 1
        for _ in range(count):
            cores.append(Core(tuple(range(next_id, next_id + per_core)), efficiency=is_efficiency))
            next_id += per_core
    simd, extras = simd_from_features(name for key, name in _FEATURES.items() if values.get(key) == "1")
    return CpuTopology(
        cores=tuple(cores),
        model=values.get("machdep.cpu.brand_string") or None,
        simd=simd,
        simd_extras=extras,
        core_types_source="sysctl hw.perflevel1.physicalcpu" if efficiency else None,
    )


def read_memory(values: dict[str, str]) -> int | None:
    """RAM in bytes (``hw.memsize``)."""
    return _int(values, "hw.memsize")


def read_gpus(values: dict[str, str]) -> tuple[Gpu, ...]:
    """Apple silicon's GPU with all of RAM as its (unified) memory; Intel Macs: none reported."""
    model = values.get("machdep.cpu.brand_string") or ""
    if values.get("hw.optional.arm64") == "1" or model.startswith("Apple"):
        return (apple_gpu(model or None, read_memory(values)),)
    return ()
