"""Hardware detection on recorded machines: Linux trees, macOS sysctl output, Windows buffers, nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.hardware.cpu import format_cpulist, parse_cpulist
from core.hardware.detect import detect
from core.hardware.windows import parse_processor_cores, topology
from tests.data.hw.machines import (
    AMD,
    ARM,
    DATA,
    MTL,
    VM,
    alder_lake_12900h,
    build_processor_information,
    copy_tree,
    core_record,
    linux,
    nvidia_failing,
    output,
    recorded,
    write,
)

GIB = 1024**3


def test_hybrid_intel_splits_p_cores_from_e_cores_and_counts_low_power_e_cores_as_efficiency() -> None:
    hw = linux(MTL)
    assert (hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (22, 16, 6, 10)
    low_power = [core for core in hw.cpu.cores if core.cpus in ((20,), (21,))]
    assert [core.efficiency for core in low_power] == [True, True]
    assert all(len(core.cpus) == 2 for core in hw.cpu.cores if not core.efficiency)  # P-cores have HT
    assert hw.cpu.core_types_source == "/sys/devices/cpu_atom/cpus"
    assert hw.cpu.model == "Intel(R) Core(TM) Ultra 7 155H"
    assert hw.cpu.simd == "avx2" and "avx_vnni" in hw.cpu.simd_extras
    assert hw.memory_bytes == 32296156 * 1024
    assert hw.cpu_limit is None  # cpu.max "max" and every CPU in the affinity mask
    assert hw.gpus == ()


def test_amd_with_smt_has_one_performance_core_per_physical_core_and_no_efficiency_cores() -> None:
    hw = linux(AMD)
    assert (hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (32, 16, 16, 0)
    assert hw.cpu.cores[0].cpus == (0, 16)
    assert hw.cpu.core_types_source is None  # top frequencies a few percent apart are one kind of core
    assert hw.cpu.simd == "avx512" and {"avx512_vnni", "avx512_bf16"} <= set(hw.cpu.simd_extras)


def test_the_recorded_two_core_vm() -> None:
    hw = linux(VM)
    assert (hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (2, 2, 2, 0)
    assert hw.cpu.model == "AMD EPYC" and hw.cpu.simd == "avx2"
    assert hw.memory_bytes == 24683656 * 1024
    assert hw.cpu_limit is None  # cgroup v1 quota -1


def test_big_little_arm_falls_back_to_capacity_clusters() -> None:
    hw = linux(ARM)
    assert (hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (8, 8, 4, 4)
    assert [core.efficiency for core in hw.cpu.cores] == [True] * 4 + [False] * 4
    assert hw.cpu.core_types_source == "/sys/devices/system/cpu/cpu*/cpu_capacity"
    assert hw.cpu.simd == "neon" and "asimddp" in hw.cpu.simd_extras
    assert hw.cpu.model is None


def test_without_capacity_the_top_frequencies_make_the_clusters(tmp_path: Path) -> None:
    root = copy_tree(ARM, tmp_path)
    for cpu in range(8):
        (root / f"sys/devices/system/cpu/cpu{cpu}/cpu_capacity").unlink()
        write(root, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq", "1800000" if cpu < 4 else "2400000")
    hw = linux(root)
    assert (hw.performance_cores, hw.efficiency_cores) == (4, 4)
    assert hw.cpu.core_types_source == "/sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq"


def test_the_root_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLACACHE_HW_ROOT", str(DATA / MTL))
    assert detect(platform="linux", run=recorded({})).logical_cpus == 22


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this machine's /sys and /proc")
def test_this_linux_machine_is_detected_live() -> None:
    hw = detect(platform="linux", run=recorded({}))
    assert hw.logical_cpus == os.cpu_count()
    assert 1 <= hw.physical_cores <= hw.logical_cpus and hw.memory_bytes


def test_a_cgroup_v2_quota_is_read_and_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    root = copy_tree(MTL, tmp_path)
    write(
        root,
        "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/app-ollacache.scope/cpu.max",
        "250000 100000",
    )
    assert (linux(root).cpu_limit.quota_cpus, linux(root).cpu_limit.quota_source) == (2.5, "cgroup v2 cpu.max")
    write(root, "sys/fs/cgroup/user.slice/cpu.max", "150000 100000")
    assert linux(root).cpu_limit.quota_cpus == 1.5


def test_a_cgroup_v1_quota_is_read(tmp_path: Path) -> None:
    root = copy_tree(VM, tmp_path)
    write(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000")
    limit = linux(root).cpu_limit
    assert limit is not None and (limit.quota_cpus, limit.quota_source) == (0.5, "cgroup v1 cpu.cfs_quota_us")


def test_an_affinity_mask_narrower_than_the_online_cpus_is_a_limit(tmp_path: Path) -> None:
    root = copy_tree(AMD, tmp_path)
    write(root, "proc/self/status", "Cpus_allowed:\t000f000f\nCpus_allowed_list:\t0-3,16-19")
    limit = linux(root).cpu_limit
    assert limit is not None and limit.quota_cpus is None
    assert limit.allowed_cpus == (0, 1, 2, 3, 16, 17, 18, 19)


def test_apple_silicon_from_recorded_sysctl_output() -> None:
    hw = detect(platform="darwin", run=recorded({"sysctl": output("macos-apple-m2-pro/sysctl.txt")}))
    assert (hw.os, hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (
        "macos",
        12,
        12,
        8,
        4,
    )
    assert hw.cpu.model == "Apple M2 Pro" and hw.memory_bytes == 32 * GIB
    assert hw.cpu.simd == "neon" and {"asimddp", "i8mm", "bf16"} <= set(hw.cpu.simd_extras)
    [gpu] = hw.gpus
    assert (gpu.vendor, gpu.memory_bytes, gpu.unified_memory) == ("apple", 32 * GIB, True)


def test_an_intel_mac_has_hyperthreads_and_no_efficiency_cores_or_gpu() -> None:
    sysctl = (
        "hw.physicalcpu: 8\nhw.logicalcpu: 16\nhw.memsize: 17179869184\nhw.optional.avx2_0: 1\n"
        "hw.optional.avx1_0: 1\nmachdep.cpu.brand_string: Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz\n"
    )
    hw = detect(platform="darwin", run=recorded({"sysctl": sysctl}))
    assert (hw.logical_cpus, hw.physical_cores, hw.performance_cores, hw.efficiency_cores) == (16, 8, 8, 0)
    assert hw.cpu.simd == "avx2" and hw.gpus == ()


def test_a_failing_sysctl_still_gives_a_machine() -> None:
    hw = detect(platform="darwin", run=recorded({"sysctl": subprocess.CalledProcessError(1, ["sysctl"])}))
    assert hw.os == "macos" and hw.logical_cpus >= 1


def test_windows_hybrid_alder_lake_from_a_processor_information_buffer() -> None:
    cpu = topology(alder_lake_12900h(), model="12th Gen Intel(R) Core(TM) i9-12900H", features=("avx", "avx2", "fma"))
    assert (cpu.logical_cpus, cpu.physical_cores, cpu.performance_cores, cpu.efficiency_cores) == (20, 14, 6, 8)
    assert [core.cpus for core in cpu.cores[:2]] == [(0, 1), (2, 3)] and cpu.cores[-1].cpus == (19,)
    assert cpu.core_types_source == "EfficiencyClass" and cpu.simd == "avx2"


def test_windows_cores_all_in_one_class_are_all_performance_cores() -> None:
    cores = parse_processor_cores(build_processor_information([(2, 0)] * 8))
    assert len(cores) == 8 and not any(core.efficiency for core in cores)


def test_windows_logical_processors_in_a_second_group_are_numbered_after_the_first() -> None:
    [core] = parse_processor_cores(core_record([64, 65], 0))
    assert core.cpus == (64, 65)


def test_a_truncated_windows_buffer_is_an_error_not_a_wrong_answer() -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_processor_cores(alder_lake_12900h()[:-10])


@pytest.mark.parametrize(
    ("recording", "expected"),
    [
        ("nvidia-smi/one-gpu.txt", [("NVIDIA GeForce RTX 4090", 24564 * 1024**2, "550.54.14")]),
        ("nvidia-smi/two-gpus.txt", [("NVIDIA GeForce RTX 3090", 24576 * 1024**2, "535.183.01")] * 2),
    ],
)
def test_nvidia_gpus_come_from_nvidia_smi(recording: str, expected: list[tuple[str, int, str]]) -> None:
    hw = linux(VM, gpus=recording)
    assert [(gpu.name, gpu.memory_bytes, gpu.driver) for gpu in hw.gpus] == expected
    assert all(gpu.vendor == "nvidia" and not gpu.unified_memory for gpu in hw.gpus)


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError("nvidia-smi is not on PATH"),
        nvidia_failing(),
        subprocess.TimeoutExpired(["nvidia-smi"], 10),
        PermissionError("not executable"),
    ],
    ids=["missing", "driver-not-loaded", "hangs", "not-executable"],
)
def test_a_missing_or_failing_nvidia_smi_means_no_nvidia_gpu(failure: BaseException) -> None:
    hw = detect(DATA / VM, platform="linux", run=recorded({"nvidia-smi": failure}))
    assert hw.gpus == ()


def test_unreadable_nvidia_smi_fields_are_unknown_not_errors() -> None:
    smi = "NVIDIA GH200 480GB, [N/A], 550.90.07\n\nnoise\n"
    hw = detect(DATA / VM, platform="linux", run=recorded({"nvidia-smi": smi}))
    [gpu] = hw.gpus
    assert (gpu.name, gpu.memory_bytes, gpu.driver) == ("NVIDIA GH200 480GB", None, "550.90.07")


def test_hardware_json_is_plain_json_with_the_detected_counts() -> None:
    document = json.loads(json.dumps(linux(MTL, gpus="nvidia-smi/laptop-gpu.txt").to_json()))
    assert {
        key: document[key]
        for key in ("logical_cpus", "physical_cores", "performance_cores", "efficiency_cores", "memory_bytes")
    } == {
        "logical_cpus": 22,
        "physical_cores": 16,
        "performance_cores": 6,
        "efficiency_cores": 10,
        "memory_bytes": 32296156 * 1024,
    }
    assert document["gpus"][0]["name"] == "NVIDIA GeForce RTX 4060 Laptop GPU" and document["os"] == "linux"


def test_cpulists_round_trip() -> None:
    assert parse_cpulist("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert format_cpulist((11, 10, 8, 3, 2, 1, 0)) == "0-3,8,10-11"
