"""Start-up time: from launching ``ollacache serve`` to its first ``/-/health`` answer (target: <= 1 s).

Launches the real command N times (fresh config and cache directories each time), polls
``/-/health`` with a raw socket until it answers, and prints the times next to the time the same
interpreter needs just to start and exit (``python -c pass``), the floor of any Python program.
``--frozen PATH`` also times a frozen build (``packaging/build.py``'s ``ollacache serve``) the same way.
Never fails on time.

    .venv/bin/python bench/startup.py [--runs 10] [--frozen dist/ollacache/ollacache]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import free_port  # noqa: E402 - bench scripts run as plain files

TARGET_S = 1.0


def _health_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET /-/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return conn.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_serve(command: list[str] | None = None) -> float:
    """Seconds from launching ``serve`` (``python -m core``, or ``command``) until ``/-/health`` answers 200."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "OLLACACHE_CONFIG_DIR": f"{scratch}/config",
            "OLLACACHE_CACHE_DIR": f"{scratch}/cache",
            "OLLACACHE_LOG_DIR": f"{scratch}/logs",
            "OLLACACHE_MANAGE_OLLAMA": "never",
        }
        started = time.perf_counter()
        serve = [
            *(command or [sys.executable, "-m", "core"]),
            "serve",
            "--port",
            str(port),
            "--upstream",
            f"http://127.0.0.1:{free_port()}",
        ]
        process = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not _health_answers(port):
                if process.poll() is not None:
                    raise RuntimeError("ollacache serve exited before answering")
                time.sleep(0.005)
            return time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(timeout=30)


def time_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--frozen", type=Path, help="a frozen build's executable, timed the same way")
    args = parser.parse_args()
    serve = [time_serve() for _ in range(args.runs)]
    frozen = [time_serve([str(args.frozen.resolve())]) for _ in range(args.runs)] if args.frozen else []
    python = [time_python() for _ in range(args.runs)]
    p50, floor = statistics.median(serve), statistics.median(python)
    print(f"start-up of `ollacache serve` to the first /-/health answer, {args.runs} runs")
    print(f"  serve:        p50 {p50 * 1000:6.0f} ms   max {max(serve) * 1000:6.0f} ms")
    print(f"  python -c '': p50 {floor * 1000:6.0f} ms   (the interpreter alone)")
    print(
        f"  serve / bare interpreter: {p50 / floor:.1f}x;  vs target {TARGET_S:.0f} s: {p50 / TARGET_S:.2f}x "
        f"({'meets' if max(serve) <= TARGET_S else 'MISSES at max'})"
    )
    if frozen:
        f50 = statistics.median(frozen)
        print(f"  frozen serve: p50 {f50 * 1000:6.0f} ms   max {max(frozen) * 1000:6.0f} ms   ({args.frozen})")
        print(f"  frozen / python -m core serve: {f50 / p50:.2f}x")


if __name__ == "__main__":
    main()
