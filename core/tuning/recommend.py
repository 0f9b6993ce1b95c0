"""Tuning recommendations for a supervised Ollama, from detected hardware. Pure: no I/O.

Every value comes with a reason (a short sentence ``ollacache hardware`` prints) and reaches Ollama
through the environment of the ``ollama serve`` Ollacache starts (`Recommendation.env`): the runner
(llama.cpp's llama-server) inherits it and reads ``LLAMA_ARG_THREADS`` when no request sets
``num_thread``, and ``LLAMA_ARG_CACHE_RAM`` for its prompt cache (:mod:`core.tuning.prompt_cache`). Nothing
is added to requests: Ollama reloads a model whenever a request's runner options differ from the loaded ones,
and a client's own value always wins.

Each value can be overridden by a setting (`SETTINGS`); None there means "use the recommendation". What
an override accepts is the setting's own parser (`core.config.settings.SPECS`), so a value the settings
take is a value the tuning takes; only the machine's own limits are checked here. The memory tiers are
data tables below, in GiB of the memory a model lives in: VRAM on NVIDIA, about three quarters of unified
memory on Apple silicon, RAM otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

from core.config.parsing import KV_CACHE_TYPES
from core.config.specs import SPEC_BY_NAME
from core.hardware.detect import Hardware
from core.tuning.prompt_cache import prompt_cache_mib
from core.units import human_bytes

T = TypeVar("T")
GIB = 1024**3
INF = math.inf

# Each tuned value (a `Recommendation` field) -> the environment variable that applies it to ``ollama serve``.
ENV_NAMES: dict[str, str] = {
    "num_thread": "LLAMA_ARG_THREADS",
    "num_ctx": "OLLAMA_CONTEXT_LENGTH",
    "keep_alive": "OLLAMA_KEEP_ALIVE",
    "num_parallel": "OLLAMA_NUM_PARALLEL",
    "max_loaded_models": "OLLAMA_MAX_LOADED_MODELS",
    "flash_attention": "OLLAMA_FLASH_ATTENTION",
    "kv_cache_type": "OLLAMA_KV_CACHE_TYPE",
    "prompt_cache_ram": "LLAMA_ARG_CACHE_RAM",
}
# The setting that overrides each value: tuning.<field>.
SETTINGS: tuple[str, ...] = tuple(f"tuning.{name}" for name in ENV_NAMES)
# Values that can change an answer (prompts beyond the context are cut; the others change numerics), for
# the cache key. Thread counts, keep-alive and the scheduling settings change speed, not answers.
OUTPUT_VALUES: tuple[str, ...] = ("num_ctx", "flash_attention", "kv_cache_type")
# Rows of (memory below this many GiB, value); the first matching row applies.
CPU_CONTEXT: tuple[tuple[float, int], ...] = ((8, 2048), (16, 4096), (32, 8192), (INF, 16384))
GPU_CONTEXT: tuple[tuple[float, int], ...] = ((6, 4096), (12, 8192), (23, 16384), (47, 32768), (INF, 65536))
KEEP_ALIVE: tuple[tuple[float, str], ...] = ((16, "5m"), (64, "30m"), (INF, "1h"))
MAX_LOADED_MODELS: tuple[tuple[float, int], ...] = ((6, 1), (32, 2), (INF, 3))
GPU_PARALLEL: tuple[tuple[float, int], ...] = ((47, 1), (INF, 2))
UNQUANTIZED = KV_CACHE_TYPES[0]  # f16, Ollama's default KV cache type; the others need flash attention
KV_QUANTIZE_BELOW_GIB = 12  # GPU memory under which the KV cache is stored as q8_0 (half of f16's bytes)
APPLE_GPU_SHARE = 0.75  # the share of unified memory macOS lets the GPU use (its recommended working set)


class TuningError(ValueError):
    """An override that cannot apply to this machine; the message names the setting and the limit."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass(frozen=True)
class Choice(Generic[T]):
    """One tuned value: ``value`` (None = left to Ollama), why, and whether a setting chose it."""

    value: T
    reason: str
    from_settings: bool = False


@dataclass(frozen=True)
class Recommendation:
    """What Ollacache applies to a supervised Ollama; `env` is how."""

    num_thread: Choice[int]
    num_ctx: Choice[int]
    keep_alive: Choice[str]
    num_parallel: Choice[int]
    max_loaded_models: Choice[int]
    flash_attention: Choice[bool | None]
    kv_cache_type: Choice[str | None]
    prompt_cache_ram: Choice[int]  # MiB per loaded model

    @property
    def env(self) -> dict[str, str]:
        """Environment variables for ``ollama serve`` (`ENV_NAMES`); a value left to Ollama (None) is not set."""
        return {
            ENV_NAMES[name]: _env_value(choice.value)
            for name, choice in self.choices().items()
            if choice.value is not None
        }

    def choices(self) -> dict[str, Choice[Any]]:
        """Each value by its short name (``num_thread``...), in a stable order."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def to_json(self) -> dict[str, Any]:
        choices = self.choices()
        return {
            **{name: choice.value for name, choice in choices.items()},
            "env": self.env,
            "reasons": {name: choice.reason for name, choice in choices.items()},
            "from_settings": [name for name, choice in choices.items() if choice.from_settings],
        }


def _env_value(value: object) -> str:
    """How Ollama's environment spells a value: a switch as 1 or 0, anything else as text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def output_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The server settings in Ollama's environment ``env`` that can change an answer (`OUTPUT_VALUES`), as env var
    -> value, for the cache key: the tuning's and the user's own ``ollama.env`` alike."""
    return {ENV_NAMES[name]: env[ENV_NAMES[name]] for name in OUTPUT_VALUES if ENV_NAMES[name] in env}


def _memory(hw: Hardware) -> tuple[int | None, bool, str]:
    """The memory a model lives in (bytes, or None when unknown), whether that is a GPU's, and its words."""
    vram = [gpu.memory_bytes for gpu in hw.gpus if gpu.memory_bytes and not gpu.unified_memory]
    if vram:
        gpus = f" on {len(vram)} GPUs" if len(vram) > 1 else ""
        return sum(vram), True, f"{human_bytes(sum(vram))} of VRAM{gpus}"
    unified = [gpu.memory_bytes for gpu in hw.gpus if gpu.memory_bytes and gpu.unified_memory]
    if unified:
        usable = int(unified[0] * APPLE_GPU_SHARE)
        return usable, True, f"the {human_bytes(usable)} of unified memory the GPU may use"
    if hw.memory_bytes:
        return hw.memory_bytes, bool(hw.gpus), f"{human_bytes(hw.memory_bytes)} of RAM"
    return None, bool(hw.gpus), "unknown memory"


def check_override(setting: str, value: object, logical_cpus: int) -> Any:
    """An override's value in the type its `Choice` holds, parsed as the setting itself parses it.

    Raises:
        TuningError: the value is of the wrong kind, or more threads than this machine's logical CPUs.
    """
    spec = SPEC_BY_NAME[setting]
    try:
        parsed = spec.parse(value)
    except (ValueError, TypeError):
        raise TuningError(setting, f"invalid value {value!r}; accepted: {spec.accepted}") from None
    if setting == "tuning.num_thread" and parsed > logical_cpus:
        raise TuningError(
            setting,
            f"{parsed} threads is more than the {logical_cpus} logical CPUs"
            f" of this machine; use at most {logical_cpus}, or unset it",
        )
    return parsed


def _tier(table: tuple[tuple[float, T], ...], memory: int) -> T:
    return next(value for below, value in table if memory < below * GIB)


def _threads(hw: Hardware) -> Choice[int]:
    cores = hw.cpu.cores
    performance = [core for core in cores if not core.efficiency] or list(cores)
    extra_threads = hw.logical_cpus - hw.physical_cores
    kind = "performance core" if hw.efficiency_cores else "core"
    left_out = []
    if extra_threads:
        left_out.append(f"its {extra_threads} extra hyperthreads")
    if hw.efficiency_cores:
        left_out.append(f"the {hw.efficiency_cores} efficiency cores")
    reason = f"one thread per physical {kind} ({len(performance)})"
    if left_out:
        reason += f"; {' and '.join(left_out)} are left out, as a thread on a shared or slower core holds up every step"
    count = len(performance)
    limit = hw.cpu_limit
    if limit is not None and limit.allowed_cpus is not None:
        allowed = set(limit.allowed_cpus)
        usable = [core for core in performance if allowed.intersection(core.cpus)]
        if not usable:
            count = max(sum(1 for core in cores if allowed.intersection(core.cpus)), 1)
            reason = (
                f"one thread per efficiency core this process may run on ({count}): its CPU affinity"
                " excludes the performance cores"
            )
        elif len(usable) < count:
            count = len(usable)
            reason += f"; this process may run on only {count} of them (CPU affinity)"
    if limit is not None and limit.quota_cpus is not None and math.floor(limit.quota_cpus) < count:
        count = max(math.floor(limit.quota_cpus), 1)
        reason += f"; capped at {count} by the {limit.quota_source} quota of {limit.quota_cpus:g} CPUs"
    return Choice(count, reason)


def _by_memory(hw: Hardware, memory: int | None, on_gpu: bool, where: str) -> dict[str, Choice[Any]]:
    """Context length, keep-alive and loaded models, from the memory a model lives in."""
    if memory is None:
        return {
            "num_ctx": Choice(4096, "Ollama's default of 4,096 tokens: the memory size is unknown"),
            "keep_alive": Choice("5m", "Ollama's default: the memory size is unknown"),
            "max_loaded_models": Choice(0, "0 lets Ollama decide from the memory it finds"),
        }
    ctx = _tier(GPU_CONTEXT if on_gpu else CPU_CONTEXT, memory)
    ram, ram_words = (hw.memory_bytes, f"{human_bytes(hw.memory_bytes)} of RAM") if hw.memory_bytes else (memory, where)
    keep = _tier(KEEP_ALIVE, ram)  # how long a model may stay loaded is about the machine's RAM
    loaded = _tier(MAX_LOADED_MODELS, memory)
    return {
        "num_ctx": Choice(
            ctx, f"{ctx:,} tokens suit {where}: the KV cache grows with the context and must fit beside the model"
        ),
        "keep_alive": Choice(
            keep,
            (
                f"Ollama's default: with {ram_words}, memory is given back soon after the last request"
                if keep == "5m"
                else f"{ram_words} can keep a model loaded between bursts of requests, so a cache miss does not"
                " wait for it to load again"
            ),
        ),
        "max_loaded_models": Choice(
            loaded,
            (
                f"one model at a time: with {where}, a second one would push the first out"
                if loaded == 1
                else f"{where} holds {loaded} models side by side (say, a chat model and an embedding model)"
                " without reloading"
            ),
        ),
    }


def _by_gpu(memory: int | None, on_gpu: bool, where: str) -> dict[str, Choice[Any]]:
    """Parallel requests, flash attention and KV cache type: a GPU's business."""
    if not on_gpu:
        return {
            "num_parallel": Choice(
                1, "one request at a time: on CPU, parallel requests share the same cores and slow each other"
            ),
            "flash_attention": Choice(None, "left to Ollama, which turns it on per model; on CPU it gains little"),
            "kv_cache_type": Choice(None, f"{UNQUANTIZED}, Ollama's default: a quantized cache needs flash attention"),
        }
    parallel = _tier(GPU_PARALLEL, memory) if memory is not None else 1
    tight = memory is not None and memory < KV_QUANTIZE_BELOW_GIB * GIB
    return {
        "num_parallel": Choice(
            parallel,
            f"{where} has room for {parallel} requests' KV caches at once"
            if parallel > 1
            else "one request at a time: each parallel slot needs its own KV cache",
        ),
        "flash_attention": Choice(True, "on: faster attention in less GPU memory, for the models that support it"),
        "kv_cache_type": Choice(
            "q8_0",
            f"q8_0 halves the KV cache's memory at a negligible cost in quality,"
            f" which {where} needs; it works with flash attention",
        )
        if tight
        else Choice(None, f"{UNQUANTIZED}, Ollama's default: there is memory enough"),
    }


def _recommended(hw: Hardware) -> dict[str, Choice[Any]]:
    """The recommendation for each value, before overrides, in `Recommendation`'s field order."""
    memory, on_gpu, where = _memory(hw)
    out = {"num_thread": _threads(hw), **_by_memory(hw, memory, on_gpu, where), **_by_gpu(memory, on_gpu, where)}
    out["prompt_cache_ram"] = Choice(*prompt_cache_mib(hw.memory_bytes))  # host RAM, whatever the GPU
    return {field.name: out[field.name] for field in fields(Recommendation)}


def _overridden(setting: str, value: object, recommended: object) -> str:
    """The reason of a value the settings chose: where it came from and what it replaced."""
    words = {None: "to leave it to Ollama", True: "on", False: "off"}
    shown = words[recommended] if recommended is None or isinstance(recommended, bool) else recommended
    reason = f"set in the settings ({setting}); the recommendation would be {shown}"
    if (
        setting == "tuning.num_thread"
        and isinstance(value, int)
        and isinstance(recommended, int)
        and value > recommended
    ):
        reason += ", so some threads now share a core or run on a slower one"
    return reason


def recommend(hw: Hardware, overrides: Mapping[str, Any] | None = None) -> Recommendation:
    """Recommended values for ``hw``, each replaced by its setting when that is not None.

    Args:
        hw: the detected machine.
        overrides: settings by name (`SETTINGS`: ``tuning.num_thread``...); other keys are ignored.

    Raises:
        TuningError: an override is out of range — e.g. ``tuning.num_thread`` above the machine's
            logical CPUs, or a quantized ``tuning.kv_cache_type`` with ``tuning.flash_attention`` false.
    """
    overrides = overrides or {}
    out = _recommended(hw)
    for name, recommended in list(out.items()):
        setting = f"tuning.{name}"
        value = overrides.get(setting)
        if value is not None:
            value = check_override(setting, value, hw.logical_cpus)
            out[name] = Choice(value, _overridden(setting, value, recommended.value), from_settings=True)
    flash, cache = out["flash_attention"], out["kv_cache_type"]
    if cache.value not in (None, UNQUANTIZED) and flash.value is not True:
        if not cache.from_settings:
            out["kv_cache_type"] = Choice(
                None,
                f"{UNQUANTIZED}, Ollama's default: a quantized cache needs"
                " flash attention, which the settings turn off",
            )
        elif flash.from_settings:
            raise TuningError(
                "tuning.kv_cache_type",
                f"{cache.value} needs flash attention, but tuning.flash_attention is false; unset one of them",
            )
        else:
            out["flash_attention"] = Choice(
                True, f"on: the KV cache type {cache.value} from the settings needs it", from_settings=True
            )
    return Recommendation(**out)
