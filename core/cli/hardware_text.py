"""What ``ollacache hardware`` prints: the detected machine and the tuning recommended for it, and why.

`format_report` is the human text: a short table of what was found, then each recommended value with
the environment variable that applies it and its reason.
"""

from __future__ import annotations

from core.hardware.cpu import format_cpulist
from core.hardware.detect import Hardware
from core.tuning.recommend import ENV_NAMES, UNQUANTIZED, Recommendation
from core.units import human_bytes


def _cores(hw: Hardware) -> str:
    text = f"{hw.physical_cores} physical, {hw.logical_cpus} logical"
    if hw.efficiency_cores:
        text += (
            f"; {hw.performance_cores} performance + {hw.efficiency_cores} efficiency (from {hw.cpu.core_types_source})"
        )
    return text


def _gpus(hw: Hardware) -> list[str]:
    if not hw.gpus:
        return ["none reported (no NVIDIA GPU via nvidia-smi, not Apple silicon)"]
    lines = []
    for gpu in hw.gpus:
        memory = human_bytes(gpu.memory_bytes) if gpu.memory_bytes is not None else "memory unknown"
        kind = "unified memory" if gpu.unified_memory else "VRAM"
        driver = f", driver {gpu.driver}" if gpu.driver else ""
        lines.append(f"{gpu.name}, {memory} {kind}{driver}")
    return lines


def _limit(hw: Hardware) -> str:
    limit = hw.cpu_limit
    if limit is None:
        return "none"
    parts = []
    if limit.quota_cpus is not None:
        parts.append(f"{limit.quota_cpus:g} CPUs ({limit.quota_source})")
    if limit.allowed_cpus is not None:
        parts.append(f"may run on CPUs {format_cpulist(limit.allowed_cpus) or 'none'} (affinity)")
    return "; ".join(parts)


# How a value left to Ollama (None) reads, per field.
_UNSET = {"flash_attention": "(per model)", "kv_cache_type": f"{UNQUANTIZED} (default)"}


def _shown(name: str, value: object) -> str:
    if value is None:
        return _UNSET.get(name, "(Ollama decides)")
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_report(hw: Hardware, rec: Recommendation) -> str:
    """A short table of the machine, then each recommended value, how it is applied and why."""
    simd = hw.cpu.simd + (f" (+ {', '.join(hw.cpu.simd_extras)})" if hw.cpu.simd_extras else "")
    gpus = _gpus(hw)
    found = [
        ("OS", hw.os),
        ("CPU", hw.cpu.model or "unknown model"),
        ("cores", _cores(hw)),
        ("SIMD", simd),
        ("memory", human_bytes(hw.memory_bytes) if hw.memory_bytes is not None else "unknown"),
        ("GPU", gpus[0]),
        *(("", line) for line in gpus[1:]),
        ("CPU limit", _limit(hw)),
    ]
    lines = ["Detected"] + [f"  {label:<10} {value}" for label, value in found]
    lines += ["", "Recommended for a supervised Ollama (applied through its environment)"]
    env = rec.env
    for name, choice in rec.choices().items():
        applied = f"{ENV_NAMES[name]}={env[ENV_NAMES[name]]}" if ENV_NAMES[name] in env else "not set"
        lines.append(f"  {name:<18} {_shown(name, choice.value):<17} {applied}")
        lines.append(f"      {choice.reason}")
    return "\n".join(lines)
