"""The size of llama.cpp's prompt cache for a supervised Ollama, from the machine's RAM. Pure: no I/O.

Ollama runs llama.cpp's server for GGUF models, and that server keeps the state of earlier prompts in host RAM so
that a prompt sharing their beginning is not processed again: up to 8 GiB per runner (one runner per loaded
model), a limit Ollama does not expose. It shows as the runner's resident memory, not in ``ollama ps``, and on
a small machine it is what runs out: a runner kept at 1 GiB used 1.6 GB instead of 9.4 GB, and an Ollama killed
for want of memory every day or two ran for good at 512 MiB. The runner inherits the limit from Ollama's
environment as ``LLAMA_ARG_CACHE_RAM`` (MiB; 0 turns the cache off), which is how Ollacache sets it.

The rule: a sixteenth of the RAM per loaded model, rounded down to a power of two, at least 256 MiB and at most
llama.cpp's own 8 GiB. A sixteenth, because several runners may each fill theirs (the tuning loads up to three
models side by side) and the model and its KV cache need the RAM first; the proxy's own cache already answers
repeated requests, so the prompt cache only speeds up misses that share a prompt's beginning. A power of two,
so the value reads as a round figure (8 GiB of RAM: 512 MiB; 16 to 31 GiB: 1 GiB; 64 GiB: 4 GiB). 256 MiB still
holds a few thousand tokens' state of a small model, and nothing gains from more than llama.cpp would take.
"""

from __future__ import annotations

from core.units import human_bytes

MIB = 1024**2
SHARE = 16  # the prompt cache of one runner is at most 1/SHARE of the RAM
FLOOR_MIB = 256
CEILING_MIB = 8192  # llama.cpp's own default
UNKNOWN_MIB = 1024  # when the RAM is unknown: the cap that kept a runner at 1.6 GB


def _mib(size: int) -> str:
    """A power of two of MiB as people write it: "512 MiB", "1 GiB"."""
    return f"{size} MiB" if size < 1024 else f"{size // 1024} GiB"


def prompt_cache_mib(ram_bytes: int | None) -> tuple[int, str]:
    """The prompt cache's size per loaded model in MiB for ``ram_bytes`` of RAM (None: unknown), and why."""
    if ram_bytes is None:
        return UNKNOWN_MIB, (
            f"the RAM is unknown, and llama.cpp's own {_mib(CEILING_MIB)} per model can run a machine out of memory"
        )
    share = ram_bytes // SHARE // MIB
    ram = human_bytes(ram_bytes)
    # Short enough to sit beside the value in the settings field: the bounds are said only where they decide.
    if share < FLOOR_MIB:
        return FLOOR_MIB, f"the least it is given: a sixteenth of {ram} of RAM is less"
    if share >= CEILING_MIB:
        return CEILING_MIB, f"llama.cpp's own most: a sixteenth of {ram} of RAM is more"
    return 1 << (share.bit_length() - 1), f"a sixteenth of {ram} of RAM per model, as a power of two"
