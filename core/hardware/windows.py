"""Windows detection: cores and their efficiency class from ``GetLogicalProcessorInformationEx``.

The function fills a buffer with variable-size ``SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX`` records
(64-bit layout, little-endian)::

    offset 0   DWORD Relationship      0 = RelationProcessorCore (others: caches, packages, groups...)
    offset 4   DWORD Size              of the whole record, in bytes: the next record starts there
    offset 8   BYTE  Flags             LTP_PC_SMT (1) when the core has more than one logical processor
    offset 9   BYTE  EfficiencyClass   higher = more performance; 0 on every core of a non-hybrid CPU
    offset 10  BYTE  Reserved[20]
    offset 30  WORD  GroupCount        1 for a core
    offset 32  GROUP_AFFINITY[GroupCount], 16 bytes each: KAFFINITY Mask (u64), WORD Group, WORD[3]

`parse_processor_cores` decodes such a buffer (the tests build realistic ones); the functions below it
call Windows itself and run only there.
"""

from __future__ import annotations

import struct
import sys

from core.hardware.cpu import Core, CpuTopology, simd_from_features

RELATION_PROCESSOR_CORE = 0
_HEADER = struct.Struct("<II")  # Relationship, Size
_PROCESSOR = struct.Struct("<BB20xH")  # Flags, EfficiencyClass, Reserved[20], GroupCount
_GROUP_AFFINITY = struct.Struct("<QH6x")  # Mask, Group, Reserved[3]
_GROUP_MASKS_AT = _HEADER.size + _PROCESSOR.size  # 32
_PROCESSORS_PER_GROUP = 64

# IsProcessorFeaturePresent feature ids -> the cpuinfo name `core.hardware.cpu` uses.
_FEATURES = {38: "sse4_2", 39: "avx", 40: "avx2", 41: "avx512f", 19: "asimd", 43: "asimddp"}


def parse_processor_cores(buffer: bytes) -> tuple[Core, ...]:
    """The physical cores in a GetLogicalProcessorInformationEx buffer.

    Logical CPU ids are ``group * 64 + bit``. Cores in the highest efficiency class are performance
    cores, the others efficiency cores; when all share one class, all are performance cores.

    Raises:
        ValueError: when a record's size runs past the end of the buffer or is too small to be one.
    """
    found: list[tuple[tuple[int, ...], int]] = []
    offset = 0
    while offset + _HEADER.size <= len(buffer):
        relationship, size = _HEADER.unpack_from(buffer, offset)
        if size < _HEADER.size or offset + size > len(buffer):
            raise ValueError(f"processor information record at byte {offset} has a bad size {size}")
        if relationship == RELATION_PROCESSOR_CORE:
            _flags, efficiency_class, group_count = _PROCESSOR.unpack_from(buffer, offset + _HEADER.size)
            if _GROUP_MASKS_AT + group_count * _GROUP_AFFINITY.size > size:
                raise ValueError(f"processor core record at byte {offset} is shorter than its group masks")
            cpus: list[int] = []
            for index in range(group_count):
                mask, group = _GROUP_AFFINITY.unpack_from(
                    buffer, offset + _GROUP_MASKS_AT + index * _GROUP_AFFINITY.size
                )
                cpus += [group * _PROCESSORS_PER_GROUP + bit for bit in range(_PROCESSORS_PER_GROUP) if mask >> bit & 1]
            found.append((tuple(sorted(cpus)), efficiency_class))
        offset += size
    top = max((efficiency_class for _, efficiency_class in found), default=0)
    return tuple(Core(cpus, efficiency=efficiency_class < top) for cpus, efficiency_class in found)


def topology(buffer: bytes, model: str | None = None, features: tuple[str, ...] = ()) -> CpuTopology:
    """The CPU described by a GetLogicalProcessorInformationEx buffer, its model name and features."""
    cores = parse_processor_cores(buffer)
    simd, extras = simd_from_features(features)
    split = any(core.efficiency for core in cores)
    return CpuTopology(
        cores=tuple(sorted(cores, key=lambda core: core.cpus)),
        model=model,
        simd=simd,
        simd_extras=extras,
        core_types_source="EfficiencyClass" if split else None,
    )


def read_processor_information() -> bytes:  # pragma: no cover - Windows only
    """The live buffer of RelationProcessorCore records.

    Raises:
        OSError: when Windows refuses (or this is not Windows).
    """
    if sys.platform != "win32":
        raise OSError("GetLogicalProcessorInformationEx exists only on Windows")
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    length = ctypes.c_uint32(0)
    kernel32.GetLogicalProcessorInformationEx(RELATION_PROCESSOR_CORE, None, ctypes.byref(length))
    buffer = ctypes.create_string_buffer(length.value)
    if not kernel32.GetLogicalProcessorInformationEx(RELATION_PROCESSOR_CORE, buffer, ctypes.byref(length)):
        raise ctypes.WinError(ctypes.get_last_error())
    return buffer.raw[: length.value]


def read_features() -> tuple[str, ...]:  # pragma: no cover - Windows only
    """SIMD features that IsProcessorFeaturePresent confirms, in cpuinfo spelling."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32")
    return tuple(name for feature, name in _FEATURES.items() if kernel32.IsProcessorFeaturePresent(feature))


def read_model() -> str | None:  # pragma: no cover - Windows only
    """The CPU's marketing name from the registry, or None."""
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
            return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip() or None
    except OSError:
        return None


def read_cpu() -> CpuTopology:  # pragma: no cover - Windows only
    """This Windows machine's CPU."""
    return topology(read_processor_information(), model=read_model(), features=read_features())
