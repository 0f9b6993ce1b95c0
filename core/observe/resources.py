"""Resource use of the machine, the proxy and supervised process trees (Ollama and its runners), via psutil.

CPU percentages use psutil's non-blocking ``cpu_percent(interval=None)``: each value covers the time since
the previous sample of the same thing, so the first sample after construction (or after a process first
appears) reads 0.0. Sample at a steady pace (the dashboard feed does it once a second, every 5 s while the
engine is quiet) and the values are per-interval averages. System CPU is 0-100 across all cores; process
CPU is per core like ``top`` (100 = one full core, up to 100 x ``cpu_count``).

A sampler keeps psutil.Process objects between calls (that is where the previous CPU times live): the
engine has one, and its readers go through :meth:`ResourceSampler.latest`, which shares one sample per
second between them. Each call reads /proc (or the OS equivalent) and takes about a
millisecond per process: fine once a second, not on the request path.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil

SHARED_INTERVAL_S = 1.0  # seconds one sample is shared for (see ResourceSampler.latest)
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied)  # ZombieProcess is a NoSuchProcess


class ResourceSampler:
    """Samples system, proxy and process-tree CPU and memory.

    Args:
        pid: the proxy's process id; defaults to this process.
    """

    def __init__(self, pid: int | None = None) -> None:
        self._proxy = psutil.Process(pid if pid is not None else os.getpid())
        self._cpu_count = psutil.cpu_count(logical=True) or 1
        self._trees: dict[int, dict[int, psutil.Process]] = {}  # root pid -> {pid: Process} seen last time
        psutil.cpu_percent(interval=None)  # prime: the next call measures from here
        self._proxy.cpu_percent(interval=None)
        self._lock = threading.Lock()
        self._latest: tuple[float, dict[str, Any]] | None = None

    def latest(
        self, trees: Mapping[str, int | None] | None = None, max_age_s: float = SHARED_INTERVAL_S
    ) -> dict[str, Any]:
        """The newest sample if it is younger than ``max_age_s`` seconds, else a new one.

        Every reader (``/-/stats`` callers, the ``/-/events`` feed, ``/-/metrics``) shares one sample per
        interval, so CPU percentages always cover a whole interval, however many clients ask. Safe to
        call from several threads.
        """
        with self._lock:
            now = time.monotonic()
            if self._latest is None or now - self._latest[0] >= max_age_s:
                self._latest = (now, self.sample(trees))
            return self._latest[1]

    def sample(self, trees: Mapping[str, int | None] | None = None) -> dict[str, Any]:
        """Current resource use.

        Args:
            trees: extra process trees to report, by key: e.g. ``{"ollama": pid}`` adds an ``"ollama"``
                key holding `sample_tree` of that pid (None when the pid is None or gone).

        Returns:
            ``{"system": {"cpu_percent", "memory_percent", "memory_used_bytes", "memory_total_bytes",
            "cpu_count"}, "proxy": {"pid", "cpu_percent", "rss_bytes"}, **trees}``. Memory used is
            total minus available (what the OS cannot hand out without swapping), matching
            ``memory_percent``.
        """
        memory = psutil.virtual_memory()
        with self._proxy.oneshot():
            proxy = {
                "pid": self._proxy.pid,
                "cpu_percent": self._proxy.cpu_percent(interval=None),
                "rss_bytes": self._proxy.memory_info().rss,
            }
        out: dict[str, Any] = {
            "system": {
                "cpu_percent": psutil.cpu_percent(interval=None),
                "memory_percent": memory.percent,
                "memory_used_bytes": memory.total - memory.available,
                "memory_total_bytes": memory.total,
                "cpu_count": self._cpu_count,
            },
            "proxy": proxy,
        }
        for key, pid in (trees or {}).items():
            out[key] = self.sample_tree(pid) if pid is not None else None
        return out

    def sample_tree(self, pid: int) -> dict[str, Any] | None:
        """CPU and memory of ``pid`` plus all its descendants (e.g. Ollama's runner subprocesses), summed.

        Returns:
            ``{"pid", "cpu_percent", "rss_bytes", "processes"}`` where ``processes`` counts the root and
            the descendants that could be read, or None when ``pid`` no longer exists (or is a zombie or
            not ours to read). A descendant that exits between listing and reading is skipped; one seen
            for the first time contributes 0.0 CPU until the next sample.
        """
        known = self._trees.get(pid, {})
        root = known.get(pid)
        try:
            if root is None or not root.is_running():
                root = psutil.Process(pid)
                known = {}
            members = [root, *root.children(recursive=True)]
        except _GONE:
            self._trees.pop(pid, None)
            return None
        seen: dict[int, psutil.Process] = {}
        cpu_percent = 0.0
        rss_bytes = 0
        for proc in members:
            previous = known.get(proc.pid)
            if previous is not None and previous == proc:  # same pid and start time: not a reused pid
                proc = previous  # it holds the CPU times of the previous sample
            try:
                with proc.oneshot():
                    if proc.pid == pid and proc.status() == psutil.STATUS_ZOMBIE:
                        raise psutil.ZombieProcess(pid)
                    cpu = proc.cpu_percent(interval=None)
                    rss = proc.memory_info().rss
            except _GONE:
                if proc.pid == pid:
                    self._trees.pop(pid, None)
                    return None
                continue
            seen[proc.pid] = proc
            cpu_percent += cpu
            rss_bytes += rss
        self._trees[pid] = seen
        return {"pid": pid, "cpu_percent": cpu_percent, "rss_bytes": rss_bytes, "processes": len(seen)}
