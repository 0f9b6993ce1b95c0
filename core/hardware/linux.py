"""Linux detection: the CPU, memory and CPU limits, read from ``/sys`` and ``/proc`` under a root.

Every path is relative to ``root`` (``/`` on a live system), so tests run the same code on recorded trees
of other machines. Only these files are read:

- ``sys/devices/system/cpu/online`` and, per CPU, ``topology/core_cpus_list`` (older kernels:
  ``thread_siblings_list``; without either, ``physical_package_id`` + ``core_id``) to group logical CPUs
  into physical cores;
- ``sys/devices/cpu_core/cpus`` and ``sys/devices/cpu_atom/cpus`` (Intel hybrids, kernel 5.13+): the
  atom list holds the E-cores, low-power E-cores included. Without them, ``cpu_capacity`` and then
  ``cpufreq/cpuinfo_max_freq`` clusters (ARM big.LITTLE): cores well below the fastest are efficiency cores;
- ``proc/cpuinfo`` (``model name``, ``flags`` / ``Features``), ``proc/meminfo`` (``MemTotal``);
- ``proc/self/cgroup`` and the cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` on
  the way from this process's cgroup up to the root; ``proc/self/status`` (``Cpus_allowed_list``).

A missing or unreadable file means "not known", never an error.
"""

from __future__ import annotations

from pathlib import Path

from core.hardware.cpu import Core, CpuLimit, CpuTopology, parse_cpulist, simd_from_features

CPU_DIR = "sys/devices/system/cpu"
HYBRID_PERFORMANCE = "sys/devices/cpu_core/cpus"
HYBRID_ATOM = "sys/devices/cpu_atom/cpus"
# A core whose capacity (or top frequency) is under this share of the fastest core's is an efficiency
# core. Well below big.LITTLE gaps (~0.4-0.75), well above the few percent by which "preferred" cores of
# one kind differ (AMD preferred cores, Intel Turbo Boost Max 3.0).
EFFICIENCY_RATIO = 0.85
_CLUSTER_FILES = ("cpu_capacity", "cpufreq/cpuinfo_max_freq")
_CGROUP_V1_CPU_DIRS = ("sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu")


def _read(root: Path, relative: str) -> str | None:
    try:
        return (root / relative).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo_fields(root: Path) -> dict[str, str]:
    """The first value of each ``key : value`` line of /proc/cpuinfo (processor 0's, for per-CPU keys)."""
    fields: dict[str, str] = {}
    for line in (_read(root, "proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _online(root: Path) -> tuple[int, ...]:
    text = _read(root, f"{CPU_DIR}/online")
    if text and text.strip():
        return parse_cpulist(text)
    processors = [
        line for line in (_read(root, "proc/cpuinfo") or "").splitlines() if line.split(":")[0].strip() == "processor"
    ]
    return tuple(range(max(len(processors), 1)))


def _core_key(root: Path, cpu: int) -> tuple[object, ...]:
    topology = f"{CPU_DIR}/cpu{cpu}/topology"
    for name in ("core_cpus_list", "thread_siblings_list"):
        text = _read(root, f"{topology}/{name}")
        if text and text.strip():
            return ("siblings", *parse_cpulist(text))
    package, core_id = _read(root, f"{topology}/physical_package_id"), _read(root, f"{topology}/core_id")
    if package is not None and core_id is not None:
        return ("ids", package.strip(), core_id.strip())
    return ("cpu", cpu)


def _efficiency_cpus(root: Path, online: tuple[int, ...]) -> tuple[set[int], str | None]:
    """Logical CPUs on efficiency cores, and the file that said so."""
    atom = _read(root, HYBRID_ATOM)
    if atom is not None and _read(root, HYBRID_PERFORMANCE) is not None:
        return set(parse_cpulist(atom)), "/" + HYBRID_ATOM
    for name in _CLUSTER_FILES:
        values: dict[int, int] = {}
        for cpu in online:
            text = _read(root, f"{CPU_DIR}/cpu{cpu}/{name}")
            if text is None or not text.strip().isdigit():
                break
            values[cpu] = int(text)
        else:
            top = max(values.values(), default=0)
            slow = {cpu for cpu, value in values.items() if value < top * EFFICIENCY_RATIO}
            if slow:
                return slow, f"/{CPU_DIR}/cpu*/{name}"
    return set(), None


def read_cpu(root: Path) -> CpuTopology:
    """The online CPU's cores (with their kind), model name and SIMD level."""
    online = _online(root)
    groups: dict[tuple[object, ...], list[int]] = {}
    for cpu in online:
        groups.setdefault(_core_key(root, cpu), []).append(cpu)
    efficient, source = _efficiency_cpus(root, online)
    cores = [Core(tuple(sorted(cpus)), efficiency=bool(efficient.intersection(cpus))) for cpus in groups.values()]
    if all(core.efficiency for core in cores):  # e.g. an all-E-core chip: no split to make
        cores, source = [Core(core.cpus) for core in cores], None
    fields = _cpuinfo_fields(root)
    # x86 has "model name"; ARM boards may name the machine in "Model" or "Hardware" ("model" on x86 is
    # a number).
    model = next(
        (
            value
            for key in ("model name", "model", "hardware")
            if (value := fields.get(key, "")) and not value.isdigit()
        ),
        None,
    )
    simd, extras = simd_from_features((fields.get("flags") or fields.get("features") or "").split())
    return CpuTopology(
        cores=tuple(sorted(cores, key=lambda core: core.cpus)),
        model=model,
        simd=simd,
        simd_extras=extras,
        core_types_source=source,
    )


def read_memory(root: Path) -> int | None:
    """Total RAM in bytes (``MemTotal``), or None when /proc/meminfo does not say."""
    for line in (_read(root, "proc/meminfo") or "").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.strip() == "MemTotal" and parts and parts[0].isdigit():
            return int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return None


def _cgroup_paths(root: Path) -> dict[str, str]:
    """This process's cgroup per controller (``""`` is the v2 hierarchy); ``/`` when unknown."""
    paths: dict[str, str] = {}
    for line in (_read(root, "proc/self/cgroup") or "").splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2] or "/"
    return paths


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def _up_to_root(path: str) -> list[str]:
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[:end]) for end in range(len(parts), -1, -1)]


def _quota(root: Path) -> tuple[float | None, str | None]:
    """The tightest cgroup CPU quota on the way from this process's cgroup to the root, in CPUs."""
    paths = _cgroup_paths(root)
    found: list[tuple[float, str]] = []
    for directory in _up_to_root(paths.get("", "/")):
        fields = (_read(root, _join("sys/fs/cgroup", directory, "cpu.max")) or "").split()
        if len(fields) == 2 and fields[0] != "max" and fields[0].isdigit() and fields[1].isdigit():
            found.append((int(fields[0]) / int(fields[1]), "cgroup v2 cpu.max"))
    for mount in _CGROUP_V1_CPU_DIRS:
        for directory in _up_to_root(paths.get("cpu", "/")):
            quota = _read(root, _join(mount, directory, "cpu.cfs_quota_us"))
            period = _read(root, _join(mount, directory, "cpu.cfs_period_us"))
            if quota and period and quota.strip().isdigit() and period.strip().isdigit() and int(period):
                found.append((int(quota) / int(period), "cgroup v1 cpu.cfs_quota_us"))
    return min(found) if found else (None, None)


def read_cpu_limit(root: Path, online: tuple[int, ...]) -> CpuLimit | None:
    """The cgroup CPU quota and the affinity mask of this process, or None when neither restricts it.

    Args:
        online: the online logical CPUs; an affinity mask that covers all of them is no restriction.
    """
    quota, source = _quota(root)
    allowed: tuple[int, ...] | None = None
    for line in (_read(root, "proc/self/status") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list" and value.strip():
            try:
                allowed = tuple(cpu for cpu in parse_cpulist(value) if cpu in online)
            except ValueError:
                allowed = None
    if allowed is not None and set(online) <= set(allowed):
        allowed = None
    if quota is None and allowed is None:
        return None
    return CpuLimit(quota_cpus=quota, quota_source=source, allowed_cpus=allowed)
