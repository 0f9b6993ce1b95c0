"""Tuning recommendations, overrides, output settings and the `ollacache hardware` report, per machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.hardware_text import format_report
from core.config.settings import SPEC_BY_NAME, SettingError, load
from core.hardware.detect import Hardware, detect
from core.hardware.windows import topology
from core.tuning.in_force import hardware_json
from core.tuning.recommend import SETTINGS, TuningError, output_settings, recommend
from tests.data.hw.machines import (
    AMD,
    LINUX_MACHINES,
    MTL,
    VM,
    alder_lake_12900h,
    copy_tree,
    linux,
    output,
    recorded,
    write,
)


def apple_m2_pro() -> Hardware:
    return detect(platform="darwin", run=recorded({"sysctl": output("macos-apple-m2-pro/sysctl.txt")}))


def windows_12900h() -> Hardware:
    cpu = topology(alder_lake_12900h(), model="12th Gen Intel(R) Core(TM) i9-12900H", features=("avx2",))
    return Hardware("windows", cpu, memory_bytes=32 * 1024**3)


def test_hybrid_intel_laptop_gets_one_thread_per_p_core_and_cpu_sized_settings() -> None:
    rec = recommend(linux(MTL))
    assert rec.num_thread.value == 6
    assert "performance core (6)" in rec.num_thread.reason
    assert "6 extra hyperthreads" in rec.num_thread.reason and "10 efficiency cores" in rec.num_thread.reason
    assert rec.env == {
        "LLAMA_ARG_THREADS": "6",
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_KEEP_ALIVE": "30m",
        "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_MAX_LOADED_MODELS": "2",
        "LLAMA_ARG_CACHE_RAM": "1024",
    }
    assert "30.8 GiB of RAM" in rec.num_ctx.reason
    assert rec.flash_attention.value is None and rec.kv_cache_type.value is None  # CPU only: left to Ollama


def test_amd_with_smt_gets_one_thread_per_core_not_per_hyperthread() -> None:
    rec = recommend(linux(AMD))
    assert rec.num_thread.value == 16 and "16 extra hyperthreads are left out" in rec.num_thread.reason
    assert (rec.num_ctx.value, rec.keep_alive.value, rec.max_loaded_models.value) == (16384, "30m", 3)


def test_the_two_core_vm() -> None:
    rec = recommend(linux(VM))
    assert rec.num_thread.value == 2 and rec.num_thread.reason == "one thread per physical core (2)"
    assert rec.num_ctx.value == 8192 and rec.num_parallel.value == 1
    assert "slow each other" in rec.num_parallel.reason


@pytest.mark.parametrize(
    ("ram_gib", "mib"),
    [(1, 256), (4, 256), (7.6, 256), (8, 512), (16, 1024), (23.5, 1024), (32, 2048), (64, 4096), (256, 8192)],
)
def test_the_prompt_cache_is_a_sixteenth_of_the_ram_as_a_power_of_two_within_256_mib_and_8_gib(
    ram_gib: float, mib: int
) -> None:
    hw = linux(VM)
    rec = recommend(Hardware(hw.os, hw.cpu, memory_bytes=int(ram_gib * 2**30)))
    assert rec.prompt_cache_ram.value == mib and rec.env["LLAMA_ARG_CACHE_RAM"] == str(mib)
    assert "a sixteenth of" in rec.prompt_cache_ram.reason
    sixteenth_mib = ram_gib * 1024 / 16
    bound = "the least" if sixteenth_mib < 256 else "own most" if sixteenth_mib >= 8192 else "as a power of two"
    assert bound in rec.prompt_cache_ram.reason


def test_the_prompt_cache_is_sized_by_the_ram_even_with_a_gpu() -> None:
    on_gpu = recommend(linux(MTL, gpus="nvidia-smi/laptop-gpu.txt"))
    assert on_gpu.prompt_cache_ram.value == recommend(linux(MTL)).prompt_cache_ram.value == 1024
    assert "30.8 GiB of RAM" in on_gpu.prompt_cache_ram.reason


def test_the_prompt_cache_from_the_settings_wins_and_zero_turns_it_off() -> None:
    rec = recommend(linux(MTL), {"tuning.prompt_cache_ram": 0})
    assert rec.env["LLAMA_ARG_CACHE_RAM"] == "0" and rec.prompt_cache_ram.from_settings
    assert "the recommendation would be 1024" in rec.prompt_cache_ram.reason
    with pytest.raises(TuningError, match="tuning.prompt_cache_ram"):
        recommend(linux(MTL), {"tuning.prompt_cache_ram": -1})


@pytest.mark.parametrize(
    "hw",
    [*(linux(name) for name in LINUX_MACHINES), apple_m2_pro(), windows_12900h()],
    ids=[*LINUX_MACHINES, "macos-m2-pro", "windows-12900h"],
)
def test_threads_never_count_hyperthreads_or_efficiency_cores(hw: Hardware) -> None:
    assert recommend(hw).num_thread.value == hw.physical_cores - hw.efficiency_cores


def test_windows_hybrid_gets_its_p_cores_where_llama_cpp_would_count_e_cores_too() -> None:
    assert recommend(windows_12900h()).env["LLAMA_ARG_THREADS"] == "6"


def test_apple_silicon_sizes_by_the_unified_memory_the_gpu_may_use() -> None:
    rec = recommend(apple_m2_pro())
    assert rec.num_thread.value == 8 and "4 efficiency cores" in rec.num_thread.reason
    assert rec.num_ctx.value == 32768 and "24.0 GiB of unified memory" in rec.num_ctx.reason
    assert rec.env["OLLAMA_FLASH_ATTENTION"] == "1" and "OLLAMA_KV_CACHE_TYPE" not in rec.env


def test_a_big_gpu_gets_a_long_context_and_flash_attention() -> None:
    rec = recommend(linux(AMD, gpus="nvidia-smi/one-gpu.txt"))
    assert (rec.num_ctx.value, rec.flash_attention.value, rec.kv_cache_type.value) == (32768, True, None)
    assert "24.0 GiB of VRAM" in rec.num_ctx.reason
    assert rec.num_thread.value == 16  # the CPU still runs what does not fit on the GPU


def test_two_gpus_add_up_and_leave_room_for_parallel_requests() -> None:
    rec = recommend(linux(AMD, gpus="nvidia-smi/two-gpus.txt"))
    assert (rec.num_ctx.value, rec.num_parallel.value) == (65536, 2)
    assert "48.0 GiB of VRAM on 2 GPUs" in rec.num_parallel.reason


def test_a_small_gpu_quantizes_the_kv_cache_alongside_flash_attention() -> None:
    rec = recommend(linux(MTL, gpus="nvidia-smi/laptop-gpu.txt"))
    assert (rec.num_ctx.value, rec.max_loaded_models.value) == (8192, 2)
    assert rec.env["OLLAMA_FLASH_ATTENTION"] == "1" and rec.env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert "halves the KV cache" in rec.kv_cache_type.reason


def test_a_cgroup_quota_caps_the_threads(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    write(root, "sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cpu.max", "450000 100000")
    rec = recommend(linux(root))
    assert rec.num_thread.value == 4
    assert "capped at 4 by the cgroup v2 cpu.max quota of 4.5 CPUs" in rec.num_thread.reason


def test_a_quota_under_one_cpu_still_gets_one_thread(tmp_path: Path) -> None:
    root = copy_tree(VM, tmp_path)
    write(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000")
    assert recommend(linux(root)).num_thread.value == 1


@pytest.mark.parametrize(
    ("machine", "allowed", "threads", "words"),
    [
        (AMD, "0-3,16-19", 4, "may run on only 4 of them"),
        (MTL, "0-5", 1, "may run on only 1 of them"),  # cpus 2-5 are E-cores: one P-core is allowed
        (MTL, "2-9", 8, "affinity excludes the performance cores"),
    ],
)
def test_the_affinity_mask_caps_the_threads(
    tmp_path: Path, machine: str, allowed: str, threads: int, words: str
) -> None:
    root = copy_tree(machine, tmp_path)
    write(root, "proc/self/status", f"Cpus_allowed_list:\t{allowed}")
    rec = recommend(linux(root))
    assert rec.num_thread.value == threads and words in rec.num_thread.reason


@pytest.mark.parametrize(
    ("setting", "value", "env_name", "env_value"),
    [
        ("tuning.num_thread", 12, "LLAMA_ARG_THREADS", "12"),
        ("tuning.num_ctx", 32768, "OLLAMA_CONTEXT_LENGTH", "32768"),
        ("tuning.keep_alive", "-1", "OLLAMA_KEEP_ALIVE", "-1"),
        ("tuning.keep_alive", 600, "OLLAMA_KEEP_ALIVE", "600"),
        ("tuning.num_parallel", 4, "OLLAMA_NUM_PARALLEL", "4"),
        ("tuning.max_loaded_models", 1, "OLLAMA_MAX_LOADED_MODELS", "1"),
        ("tuning.flash_attention", True, "OLLAMA_FLASH_ATTENTION", "1"),
        ("tuning.kv_cache_type", "f16", "OLLAMA_KV_CACHE_TYPE", "f16"),
    ],
)
def test_a_setting_wins_over_the_recommendation_and_says_so(
    setting: str, value: object, env_name: str, env_value: str
) -> None:
    rec = recommend(linux(MTL), {setting: value})
    assert rec.env[env_name] == env_value
    name = setting.removeprefix("tuning.")
    choice = rec.choices()[name]
    assert choice.from_settings and f"set in the settings ({setting})" in choice.reason
    assert rec.to_json()["from_settings"] == [name]


def test_an_overridden_reason_names_what_it_replaced() -> None:
    rec = recommend(linux(MTL), {"tuning.num_thread": 12, "tuning.flash_attention": False})
    assert rec.num_thread.reason == (
        "set in the settings (tuning.num_thread); the recommendation would be 6,"
        " so some threads now share a core or run on a slower one"
    )
    assert rec.flash_attention.reason == (
        "set in the settings (tuning.flash_attention); the recommendation would be to leave it to Ollama"
    )


def test_unset_settings_leave_the_recommendation() -> None:
    overrides = dict.fromkeys(("tuning.num_thread", "tuning.num_ctx", "tuning.kv_cache_type"))
    assert recommend(linux(MTL), overrides) == recommend(linux(MTL))


def test_more_threads_than_logical_cpus_is_an_error_naming_the_limit() -> None:
    with pytest.raises(TuningError, match=r"tuning.num_thread: 23 threads is more than the 22 logical CPUs") as error:
        recommend(linux(MTL), {"tuning.num_thread": 23})
    assert isinstance(error.value, ValueError) and error.value.name == "tuning.num_thread"
    assert recommend(linux(MTL), {"tuning.num_thread": 22}).num_thread.value == 22  # hyperthreads: allowed, not advised


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("tuning.num_thread", 0),
        ("tuning.num_ctx", "lots"),
        ("tuning.num_ctx", True),
        ("tuning.keep_alive", "forever"),
        ("tuning.flash_attention", "maybe"),
        ("tuning.kv_cache_type", "q5_1"),
        ("tuning.num_parallel", 0),
    ],
)
def test_values_of_the_wrong_kind_are_errors(setting: str, value: object) -> None:
    with pytest.raises(TuningError, match=setting):
        recommend(linux(VM), {setting: value})


REFUSED = "refused"


@pytest.mark.parametrize(
    ("setting", "values"),
    [
        ("tuning.num_thread", ["0", "1", "6", "-1", "1_0", "2.0", "six"]),
        ("tuning.num_ctx", ["0", "4096", "4k"]),
        ("tuning.keep_alive", ["30m", "1h30m", "2.5h", "-1", "300", "forever", "5 m"]),
        ("tuning.num_parallel", ["0", "1", "4"]),
        ("tuning.max_loaded_models", ["0", "1", "-1", "two"]),
        ("tuning.flash_attention", ["true", "0", "yes", "maybe"]),
        ("tuning.kv_cache_type", ["f16", "q8_0", "q4_0", "q5_1", "F16"]),
        ("tuning.prompt_cache_ram", ["0", "512", "-1", "1GiB", "1.5"]),
    ],
)
def test_the_settings_and_the_tuning_accept_the_same_values(
    monkeypatch: pytest.MonkeyPatch, setting: str, values: list[str]
) -> None:
    variable = SPEC_BY_NAME[setting].env
    assert variable is not None
    for value in values:
        monkeypatch.setenv(variable, value)
        try:
            from_settings = load()[setting]
        except SettingError:
            from_settings = REFUSED
        try:
            tuned = recommend(linux(MTL), {setting: value}).choices()[setting.removeprefix("tuning.")].value
        except TuningError:
            tuned = REFUSED
        assert from_settings == tuned, (setting, value)


def test_every_tuned_value_has_a_setting() -> None:
    assert set(SETTINGS) <= set(SPEC_BY_NAME)
    assert set(SETTINGS) == {name for name in SPEC_BY_NAME if name.startswith("tuning.")} - {"tuning.inject_options"}


def test_zero_loaded_models_from_the_settings_leaves_the_count_to_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_MAX_LOADED_MODELS", "0")  # Ollama's own meaning: 3 per GPU, or 3 on CPU
    rec = recommend(linux(MTL), {"tuning.max_loaded_models": load()["tuning.max_loaded_models"]})
    assert rec.env["OLLAMA_MAX_LOADED_MODELS"] == "0" and rec.max_loaded_models.from_settings


def test_a_quantized_kv_cache_from_the_settings_brings_flash_attention_with_it() -> None:
    rec = recommend(linux(VM), {"tuning.kv_cache_type": "q4_0"})
    assert rec.env["OLLAMA_KV_CACHE_TYPE"] == "q4_0" and rec.env["OLLAMA_FLASH_ATTENTION"] == "1"
    assert "q4_0 from the settings needs it" in rec.flash_attention.reason


def test_a_quantized_kv_cache_with_flash_attention_turned_off_is_an_error() -> None:
    with pytest.raises(TuningError, match="needs flash attention"):
        recommend(linux(VM), {"tuning.kv_cache_type": "q8_0", "tuning.flash_attention": False})


def test_turning_flash_attention_off_drops_the_recommended_kv_quantization() -> None:
    rec = recommend(linux(MTL, gpus="nvidia-smi/laptop-gpu.txt"), {"tuning.flash_attention": False})
    assert rec.env["OLLAMA_FLASH_ATTENTION"] == "0" and "OLLAMA_KV_CACHE_TYPE" not in rec.env
    assert "settings turn off" in rec.kv_cache_type.reason


def test_output_settings_hold_what_changes_answers_and_no_thread_counts() -> None:
    assert output_settings(recommend(linux(MTL, gpus="nvidia-smi/laptop-gpu.txt")).env) == {
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
    }
    assert output_settings(recommend(linux(VM), {"tuning.num_thread": 1}).env) == {"OLLAMA_CONTEXT_LENGTH": "8192"}


def test_unknown_memory_keeps_ollamas_defaults() -> None:
    hw = linux(VM)
    rec = recommend(Hardware(hw.os, hw.cpu, memory_bytes=None))
    assert (rec.num_ctx.value, rec.keep_alive.value) == (4096, "5m") and "unknown" in rec.num_ctx.reason
    assert rec.prompt_cache_ram.value == 1024 and "unknown" in rec.prompt_cache_ram.reason  # never llama.cpp's 8 GiB


def test_hardware_json_has_what_the_cli_and_the_control_api_promise() -> None:
    hw = linux(MTL, gpus="nvidia-smi/laptop-gpu.txt")
    rec = recommend(hw)
    document = json.loads(json.dumps(hardware_json(hw, rec)))
    assert {
        "logical_cpus",
        "physical_cores",
        "performance_cores",
        "efficiency_cores",
        "memory_bytes",
        "gpus",
        "cpu_model",
        "simd",
        "cpu_limit",
        "os",
        "recommended",
    } <= document.keys()
    recommended = document["recommended"]
    assert (recommended["num_thread"], recommended["num_ctx"], recommended["keep_alive"]) == (6, 8192, "30m")
    assert recommended["env"] == rec.env and recommended["reasons"]["num_thread"] == rec.num_thread.reason


def test_the_report_shows_what_was_found_and_each_recommendation_with_its_reason() -> None:
    hw = linux(MTL)
    rec = recommend(hw)
    text = format_report(hw, rec)
    assert "Intel(R) Core(TM) Ultra 7 155H" in text
    assert "16 physical, 22 logical; 6 performance + 10 efficiency" in text
    thread_line = next(line for line in text.splitlines() if line.strip().startswith("num_thread"))
    assert thread_line.split()[1] == "6" and "LLAMA_ARG_THREADS=6" in thread_line
    assert rec.num_thread.reason in text and rec.keep_alive.reason in text
    assert "flash_attention" in text and "not set" in text


def test_the_report_names_settings_overrides_and_limits(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    write(root, "proc/self/status", "Cpus_allowed_list:\t0-3,16-19")
    hw = linux(root, gpus="nvidia-smi/one-gpu.txt")
    text = format_report(hw, recommend(hw, {"tuning.num_ctx": 4096}))
    assert "may run on CPUs 0-3,16-19 (affinity)" in text
    assert "NVIDIA GeForce RTX 4090, 24.0 GiB VRAM, driver 550.54.14" in text
    assert "set in the settings (tuning.num_ctx); the recommendation would be 32768" in text
