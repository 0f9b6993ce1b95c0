"""GPUs that a tool reports: NVIDIA cards through ``nvidia-smi``, Apple silicon's unified memory.

Only what a tool says is reported; a machine whose GPU no tool describes (AMD, Intel) reads as having
none, which makes every recommendation the CPU one — the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NVIDIA_SMI: tuple[str, ...] = (
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
)
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Gpu:
    """One GPU.

    Attributes:
        name: as its tool names it, e.g. ``"NVIDIA GeForce RTX 4090"`` or ``"Apple M2 Pro"``.
        vendor: ``"nvidia"`` or ``"apple"``.
        memory_bytes: its memory in bytes — dedicated VRAM, or for unified memory the RAM it shares with
            the CPU — or None when the tool does not say.
        driver: the driver version, when the tool reports one.
        unified_memory: True when the GPU shares system RAM (Apple silicon).
    """

    name: str
    vendor: str
    memory_bytes: int | None
    driver: str | None = None
    unified_memory: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "memory_bytes": self.memory_bytes,
            "driver": self.driver,
            "unified_memory": self.unified_memory,
        }


def _value(text: str) -> str | None:
    text = text.strip()
    return None if not text or text.startswith("[") else text  # "[N/A]", "[Not Supported]"


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """GPUs from the output of `NVIDIA_SMI`: one ``name, memory MiB, driver`` line per GPU.

    Lines that do not have those three fields are skipped; an unreadable memory size is None.
    """
    gpus: list[Gpu] = []
    for line in text.splitlines():
        fields = line.rsplit(",", 2)  # split from the right: the name is the only field with free text
        if len(fields) != 3 or not fields[0].strip():
            continue
        memory = _value(fields[1])
        try:
            memory_bytes = int(float(memory)) * _MIB if memory is not None else None
        except ValueError:
            memory_bytes = None
        gpus.append(Gpu(name=fields[0].strip(), vendor="nvidia", memory_bytes=memory_bytes, driver=_value(fields[2])))
    return tuple(gpus)


def apple_gpu(model: str | None, memory_bytes: int | None) -> Gpu:
    """Apple silicon's integrated GPU, which shares all of the machine's RAM (unified memory)."""
    return Gpu(name=model or "Apple silicon GPU", vendor="apple", memory_bytes=memory_bytes, unified_memory=True)
