"""Ollama's own server variables as settings of the expert page: each reaches the Ollama that Ollacache starts as
the variable Ollama reads (``ollama.no_cloud`` as ``OLLAMA_NO_CLOUD``...), and only when it is set: unset, Ollama
does as it would anyway (:attr:`ServerVariable.unset` says what, from Ollama's ``envconfig``).

Each is declared once, by :func:`_server`, as its :class:`~core.config.spec.Spec` (:data:`SERVER_SPECS`) and the
variable that applies it (:data:`SERVER_VARIABLES`, which :func:`core.tuning.in_force.ollama_env` writes). The
environment variable of each setting is ``OLLACACHE_`` before Ollama's own name. Variables that change the prompt
a model sees (``OLLAMA_GO_TEMPLATE``) are left out, as they would have to be in the cache key; ``ollama.env``
still sets any variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.config.parsing import choice, parse_bool, parse_bytes, parse_origins, parse_seconds, parse_whole
from core.config.spec import OLLAMA_RESTART, OLLAMA_SERVER, Kind, Spec

SWITCH = "true or false (also 1/0, on/off, yes/no)"
LOG_LEVELS = {"info": "0", "debug": "1", "trace": "2"}  # OLLAMA_DEBUG's numbers


@dataclass(frozen=True)
class ServerVariable:
    """How ``setting`` reaches Ollama: as ``variable``, its value written by ``text``; ``unset`` is what Ollama does
    without it, as a settings form shows it."""

    setting: str
    variable: str
    unset: str
    text: Callable[[Any], str] = str


def _go_bool(value: bool) -> str:
    return "1" if value else "0"


def _text(pattern: str) -> Callable[[object], str]:
    """A parser of a value that must match ``pattern`` whole, spaces around it dropped."""
    compiled = re.compile(pattern, re.ASCII)

    def parse(value: object) -> str:
        text = str(value).strip()
        if isinstance(value, bool) or not compiled.fullmatch(text):
            raise ValueError(value)
        return text

    return parse


_DEVICE_IDS = _text(r"-?[\w.:-]+(,-?[\w.:-]+)*")  # "0,1", "GPU-8f1c…" (a UUID), "-1" (none)


def parse_devices(value: object) -> str:
    """GPU numbers or UUIDs separated by commas, written without spaces as the GPU libraries read them."""
    return _DEVICE_IDS(value if isinstance(value, bool) else re.sub(r"\s*,\s*", ",", str(value), flags=re.ASCII))


def _devices(setting: str, variable: str, label: str, gpus: str, naming: str) -> tuple[Spec, ServerVariable]:
    """A variable that chooses which ``gpus`` (of one kind) Ollama may use, given as ``naming`` says."""
    return _server(
        setting,
        variable,
        parse_devices,
        "device numbers or UUIDs separated by commas, such as 0,1",
        "text",
        label,
        f"Which {gpus} Ollama may use: {naming}, separated by commas ({variable}).",
        "all it finds",
        ask="Enter device numbers separated by commas, such as 0,1",
    )


def _server(
    setting: str,
    variable: str,
    parse: Callable[[object], Any],
    accepted: str,
    kind: Kind,
    label: str,
    help: str,
    unset: str,
    text: Callable[[Any], str] = str,
    **form: Any,
) -> tuple[Spec, ServerVariable]:
    """One server variable's setting (unset by default, in the expert section, applied by restarting Ollama)."""
    spec = Spec(
        setting,
        None,
        parse,
        accepted,
        f"OLLACACHE_{variable}",
        None,
        help,
        section=OLLAMA_SERVER,
        kind=kind,
        effect=OLLAMA_RESTART,
        label=label,
        **form,
    )
    return spec, ServerVariable(setting, variable, unset, text)


_DECLARED: tuple[tuple[Spec, ServerVariable], ...] = (
    _server(
        "ollama.no_cloud",
        "OLLAMA_NO_CLOUD",
        parse_bool,
        SWITCH,
        "switch",
        "Turn off cloud features",
        "Turn off Ollama's cloud features: models run on ollama.com, and web search (OLLAMA_NO_CLOUD).",
        "off",
        _go_bool,
    ),
    _server(
        "ollama.remotes",
        "OLLAMA_REMOTES",
        parse_origins,
        "a list of host names, or a comma-separated string",
        "list",
        "Hosts of remote models",
        "The hosts Ollama may run remote models on (OLLAMA_REMOTES).",
        "ollama.com",
        ",".join,
        ask="Enter host names separated by commas, such as ollama.com",
    ),
    _server(
        "ollama.vulkan",
        "OLLAMA_VULKAN",
        parse_bool,
        SWITCH,
        "switch",
        "Use GPUs through Vulkan",
        "Let Ollama run models on GPUs through Vulkan, on Linux and Windows (OLLAMA_VULKAN).",
        "on",
        _go_bool,
    ),
    _server(
        "ollama.integrated_gpu",
        "OLLAMA_IGPU_ENABLE",
        parse_bool,
        SWITCH,
        "switch",
        "Use integrated GPUs",
        "Let Ollama run models on a GPU built into the processor (OLLAMA_IGPU_ENABLE).",
        "Ollama decides per GPU",
        _go_bool,
    ),
    _server(
        "ollama.sched_spread",
        "OLLAMA_SCHED_SPREAD",
        parse_bool,
        SWITCH,
        "switch",
        "Spread models over all GPUs",
        "Spread each model over every GPU rather than the fewest it fits on (OLLAMA_SCHED_SPREAD).",
        "off",
        _go_bool,
    ),
    _server(
        "ollama.gpu_overhead",
        "OLLAMA_GPU_OVERHEAD",
        parse_bytes,
        "a byte count such as 536870912, 500MB or 1GiB",
        "bytes",
        "VRAM left free per GPU",
        "Memory of each GPU that Ollama leaves to other programs (OLLAMA_GPU_OVERHEAD).",
        "0 B",
    ),
    _server(
        "ollama.fit",
        "LLAMA_ARG_FIT",
        parse_bool,
        SWITCH,
        "switch",
        "Fit memory to the GPUs",
        "Let llama.cpp size the memory options left unset so that a model fits its GPUs (LLAMA_ARG_FIT).",
        "on",
        lambda on: "on" if on else "off",
    ),
    _server(
        "ollama.fit_target",
        "LLAMA_ARG_FIT_TARGET",
        parse_whole(0),
        "a whole number of MiB, at least 0",
        "number",
        "VRAM margin when fitting (MiB)",
        "How much memory of each GPU, in MiB, llama.cpp keeps free when it fits a model (LLAMA_ARG_FIT_TARGET).",
        "llama.cpp decides",
        ask="Enter a whole number of MiB, such as 1024",
    ),
    _server(
        "ollama.max_queue",
        "OLLAMA_MAX_QUEUE",
        parse_whole(1),
        "a whole number, at least 1",
        "number",
        "Requests waiting at most",
        "How many requests Ollama lets wait before it refuses more (OLLAMA_MAX_QUEUE).",
        "512",
        ask="Enter a whole number, 1 or more",
    ),
    _server(
        "ollama.load_timeout",
        "OLLAMA_LOAD_TIMEOUT",
        parse_seconds,
        "seconds, or a duration such as 5m (0 = wait for ever)",
        "duration",
        "Give up a stalled load after",
        "How long a model may load without progress before Ollama gives up (OLLAMA_LOAD_TIMEOUT; 0 waits for ever).",
        "5m",
    ),
    _server(
        "ollama.max_transfer_streams",
        "OLLAMA_MAX_TRANSFER_STREAMS",
        parse_whole(1),
        "a whole number, at least 1",
        "number",
        "Transfers at once in a pull",
        "How many transfers at once a pull or push of a safetensors model makes (OLLAMA_MAX_TRANSFER_STREAMS).",
        "4",
        ask="Enter a whole number, 1 or more",
    ),
    _server(
        "ollama.no_prune",
        "OLLAMA_NOPRUNE",
        parse_bool,
        SWITCH,
        "switch",
        "Keep unused model files",
        "Keep model files no model uses when Ollama starts, instead of deleting them (OLLAMA_NOPRUNE).",
        "off",
        _go_bool,
    ),
    _server(
        "ollama.debug",
        "OLLAMA_DEBUG",
        choice(*LOG_LEVELS),
        "one of " + ", ".join(LOG_LEVELS),
        "choice",
        "Detail of Ollama's log",
        "How much Ollama writes to its log: info, debug or trace, the most (OLLAMA_DEBUG).",
        "info",
        LOG_LEVELS.__getitem__,
        choices=tuple(LOG_LEVELS),
    ),
    _server(
        "ollama.log_requests",
        "OLLAMA_DEBUG_LOG_REQUESTS",
        parse_bool,
        SWITCH,
        "switch",
        "Save every request (prompts too)",
        "Warning: Ollama then writes every request it answers, prompts included, to files in a temporary folder where"
        " they stay, with a command to replay each; for debugging only (OLLAMA_DEBUG_LOG_REQUESTS).",
        "off",
        _go_bool,
    ),
    _server(
        "ollama.llm_library",
        "OLLAMA_LLM_LIBRARY",
        _text(r"[\w.-]+"),
        "the name of one of Ollama's model runner libraries, such as cpu_avx2 or cuda_v12",
        "text",
        "Runner library",
        "Use this library to run models instead of the one Ollama detects, such as cpu_avx2 or cuda_v12"
        " (OLLAMA_LLM_LIBRARY).",
        "detected",
        ask="Enter a library name, such as cpu_avx2",
    ),
    _devices("ollama.cuda_devices", "CUDA_VISIBLE_DEVICES", "NVIDIA GPUs to use", "NVIDIA GPUs", "numbers or UUIDs"),
    _devices("ollama.hip_devices", "HIP_VISIBLE_DEVICES", "AMD GPUs to use (HIP)", "AMD GPUs", "numbers"),
    _devices("ollama.rocr_devices", "ROCR_VISIBLE_DEVICES", "AMD GPUs to use (ROCr)", "AMD GPUs", "numbers or UUIDs"),
    _devices("ollama.vulkan_devices", "GGML_VK_VISIBLE_DEVICES", "Vulkan GPUs to use", "Vulkan GPUs", "numbers"),
    _devices("ollama.gpu_ordinal", "GPU_DEVICE_ORDINAL", "AMD GPUs to use (ordinal)", "AMD GPUs", "numbers"),
    _server(
        "ollama.amd_gfx_version",
        "HSA_OVERRIDE_GFX_VERSION",
        _text(r"\d+\.\d+\.\d+"),
        "a version such as 10.3.0",
        "text",
        "AMD GPU version to assume",
        "Treat every AMD GPU found as this gfx version, for a card ROCm does not list (HSA_OVERRIDE_GFX_VERSION).",
        "the GPU's own",
        ask="Enter a version such as 10.3.0",
    ),
)
SERVER_SPECS: tuple[Spec, ...] = tuple(spec for spec, _ in _DECLARED)
SERVER_VARIABLES: dict[str, ServerVariable] = {variable.setting: variable for _, variable in _DECLARED}


def server_environment(value_of: Callable[[str], Any]) -> dict[str, str]:
    """The variables of the server settings that are set (``value_of`` gives a setting's value), as Ollama reads
    them; an empty list is as good as unset."""
    out = {}
    for setting, variable in SERVER_VARIABLES.items():
        value = value_of(setting)
        if value is not None and value != ():
            out[variable.variable] = variable.text(value)
    return out
