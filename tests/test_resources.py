"""ResourceSampler against real processes: this one and a process tree spawned for the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from core.observe.resources import ResourceSampler

BLOCK_MB = 40

# A child that holds BLOCK_MB of touched memory, burns CPU when told, and exits at end of input.
CHILD = f"""
import sys, time
block = b"x" * ({BLOCK_MB} << 20)
print("ready", flush=True)
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("spun", flush=True)
sys.stdin.read()
"""

# The root of the tree: holds memory too, starts CHILD, prints its pid, and relays lines to it.
ROOT = f"""
import subprocess, sys
block = b"x" * ({BLOCK_MB} << 20)
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
while line := sys.stdin.readline():
    child.stdin.write(line)
    child.stdin.flush()
    print(child.stdout.readline().strip(), flush=True)
child.stdin.close()
child.wait()
"""


@pytest.fixture
def tree() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running two-process tree: (root, child pid), both holding BLOCK_MB of memory."""
    with subprocess.Popen(
        [sys.executable, "-c", ROOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as root:
        assert root.stdout is not None
        child_pid = int(root.stdout.readline())  # printed once both processes hold their memory
        try:
            yield root, child_pid
        finally:
            if root.poll() is None:
                assert root.stdin is not None
                root.stdin.close()
                root.wait(timeout=60)


def test_tree_sums_memory_and_cpu_of_the_process_and_its_children(
    tree: tuple[subprocess.Popen[str], int],
) -> None:
    root, child_pid = tree
    sampler = ResourceSampler()
    first = sampler.sample_tree(root.pid)
    assert first is not None
    assert first["pid"] == root.pid
    assert first["processes"] == 2
    assert first["rss_bytes"] >= 2 * BLOCK_MB << 20
    child_only = ResourceSampler().sample_tree(child_pid)
    assert child_only is not None and child_only["processes"] == 1
    assert BLOCK_MB << 20 <= child_only["rss_bytes"] < first["rss_bytes"]

    assert root.stdin is not None and root.stdout is not None
    root.stdin.write("spin\n")  # only the child burns CPU; the root waits on its pipe
    root.stdin.flush()
    assert root.stdout.readline() == "spun\n"
    second = sampler.sample_tree(root.pid)
    assert second is not None
    assert second["cpu_percent"] > 0.0  # the child's CPU counts toward the tree


def test_tree_of_a_process_that_is_gone_is_none(tree: tuple[subprocess.Popen[str], int]) -> None:
    root, _ = tree
    sampler = ResourceSampler()
    assert sampler.sample_tree(root.pid) is not None
    assert root.stdin is not None
    root.stdin.close()
    root.wait(timeout=60)
    assert sampler.sample_tree(root.pid) is None
    assert sampler.sample(trees={"ollama": root.pid})["ollama"] is None


@pytest.mark.skipif(sys.platform == "win32", reason="zombies are a POSIX thing")
def test_an_exited_but_unreaped_process_reads_as_gone() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.read() == b""
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # it has exited, and stays a zombie until waited
        assert ResourceSampler().sample_tree(proc.pid) is None
        proc.wait(timeout=60)


def test_sample_reports_the_machine_and_this_process() -> None:
    sampler = ResourceSampler()
    start = time.process_time()
    while time.process_time() - start < 0.2:  # give the proxy (this process) some CPU to report
        pass
    sample = sampler.sample()
    system, proxy = sample["system"], sample["proxy"]
    assert set(sample) == {"system", "proxy"}
    assert system["cpu_count"] >= 1
    assert 0.0 <= system["cpu_percent"] <= 100.0
    assert 0.0 < system["memory_percent"] <= 100.0
    assert 0 < system["memory_used_bytes"] <= system["memory_total_bytes"]
    assert proxy["pid"] == os.getpid()
    assert proxy["cpu_percent"] > 0.0
    assert proxy["rss_bytes"] > 1 << 20


def test_sample_can_include_named_trees() -> None:
    sample = ResourceSampler().sample(trees={"ollama": os.getpid(), "other": None})
    assert sample["ollama"]["pid"] == os.getpid()
    assert sample["ollama"]["processes"] >= 1
    assert sample["other"] is None
