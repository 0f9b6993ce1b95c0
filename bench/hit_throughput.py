"""Hit throughput with wrk, proxy on one core, 32 connections (SPEC §10: >= 10,000 hits/s).

Primes a ~1 KB non-streamed ``/api/chat`` answer (MISS, then HIT), then runs
``wrk -t1 -c32 -d10s`` POSTing the same body, wrk pinned to core 1, against, one after the other:

- the proxy, started under ``taskset -c 0``;
- nginx (one worker, ``taskset -c 0``) serving the proxy's exact answer bytes as a static file: the
  physical floor;
- optionally the fake Ollama directly (Starlette on uvicorn, also on core 0): a framework floor.

Prints requests/s, latency percentiles, non-2xx and socket-error counts, the proxy's own hit count
for its run (every request should be a hit), and the ratio proxy/nginx. ``--profile FILE`` adds one
more proxy run with py-spy sampling it (figures of that run are not comparable) and writes a
``--format raw`` (collapsed stacks) profile. Never fails on time; all processes are stopped on exit.

    .venv/bin/python bench/hit_throughput.py [--duration 10] [--connections 32] [--json] [--fake]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHAT_BODY, CLIENT_CPU, REPO, Stack, machine_busy, taskset  # noqa: E402

TARGET_RPS = 10_000
WRK = shutil.which("wrk") or "/usr/bin/wrk"
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def lua_script(path: Path, body: bytes) -> Path:
    """A wrk script POSTing ``body`` as JSON."""
    path.write_text(f'wrk.method = "POST"\nwrk.body = [==[{body.decode()}]==]\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
    return path


def _us(text: str) -> float:
    """wrk's '123.45us' / '1.2ms' / '3.00s' in microseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of a ``wrk --latency`` report."""
    found = lambda pattern: re.search(pattern, output)  # noqa: E731
    result: dict[str, Any] = {
        "requests_per_s": float(found(r"Requests/sec:\s+([\d.]+)").group(1)),
        "requests": int(found(r"(\d+) requests in").group(1)),
        "non_2xx": int(m.group(1)) if (m := found(r"Non-2xx or 3xx responses: (\d+)")) else 0,
        "socket_errors": {},
    }
    if m := found(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    if m := found(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)"):
        result["latency_us"] = {"avg": _us(m.group(1)), "stdev": _us(m.group(2)), "max": _us(m.group(3))}
    for pct in ("50", "75", "90", "99"):
        if m := found(rf"\n\s+{pct}%\s+(\S+)"):
            result.setdefault("latency_us", {})[f"p{pct}"] = _us(m.group(1))
    return result


def run_wrk(url: str, script: Path, duration: int, connections: int) -> tuple[dict[str, Any], str]:
    """One wrk run pinned to the client core; (parsed figures, raw output)."""
    cmd = [*taskset(CLIENT_CPU), WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "-s", str(script), f"{url}/api/chat"]
    output = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return parse_wrk(output), output


def proxy_hits(stack: Stack) -> int:
    """The proxy's hit total, from ``/-/stats``."""
    import urllib.request
    with urllib.request.urlopen(f"{stack.proxy_url}/-/stats", timeout=10) as answer:
        return int(json.load(answer)["totals"]["hits"])


def run(duration: int, connections: int, with_fake: bool, profile: Path | None) -> dict[str, Any]:
    """Start everything, run wrk against each target, stop everything; returns the results."""
    results: dict[str, Any] = {"duration_s": duration, "connections": connections, "rows": {},
                               "busy_before": machine_busy()}
    rows: dict[str, dict[str, Any]] = results["rows"]
    with Stack() as stack:
        stack.start_fake()  # core 0 like the servers; idle while the proxy and nginx are measured
        stack.start_proxy()
        headers, answer = stack.prime("/api/chat", CHAT_BODY)
        results["answer_bytes"] = len(answer)
        print(f"proxy {stack.proxy_url}: 200 X-Cache: HIT verified, answer {len(answer)} B", file=sys.stderr)
        script = lua_script(stack.dir / "post.lua", CHAT_BODY)
        before = proxy_hits(stack)
        rows["proxy hit"], results["wrk_output_proxy"] = run_wrk(stack.proxy_url, script, duration, connections)
        rows["proxy hit"]["proxy_counted_hits"] = proxy_hits(stack) - before
        stack.start_nginx("/api/chat", answer, headers.get("content-type", "application/json"))
        rows["nginx static (physical floor)"], results["wrk_output_nginx"] = run_wrk(
            stack.nginx_url, script, duration, connections)
        if with_fake:
            rows["fake upstream (Starlette floor)"], _ = run_wrk(stack.fake_url, script, duration, connections)
        if profile is not None:
            results["profile"] = profile_proxy(stack, script, duration, connections, profile)
    proxy, nginx = rows["proxy hit"], rows["nginx static (physical floor)"]
    results["ratio_proxy_over_nginx"] = proxy["requests_per_s"] / nginx["requests_per_s"]
    results["ratio_proxy_over_target"] = proxy["requests_per_s"] / TARGET_RPS
    results["meets_target"] = proxy["requests_per_s"] >= TARGET_RPS
    return results


def profile_proxy(stack: Stack, script: Path, duration: int, connections: int, out: Path) -> str:
    """Sample the running proxy with py-spy (on the client core) during one more wrk run."""
    spy = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    if not Path(spy).exists():
        return "py-spy not found (.venv/bin/pip install py-spy)"
    cmd = [*taskset(CLIENT_CPU), spy, "record", "--pid", str(stack.proxy_pid), "--format", "raw",
           "--rate", "250", "--nonblocking", "--duration", str(duration), "-o", str(out)]
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        figures, _ = run_wrk(stack.proxy_url, script, duration, connections)
    finally:
        _, err = spy_proc.communicate(timeout=duration + 60)
    if spy_proc.returncode != 0:
        return f"py-spy failed: {err.strip()[-500:]}"
    return f"wrote {out} ({figures['requests_per_s']:.0f} req/s while sampled)"


def print_report(results: dict[str, Any]) -> None:
    """The human-readable report."""
    print(f"hit throughput: wrk -t1 -c{results['connections']} -d{results['duration_s']}s, POST /api/chat, "
          f"answer body {results['answer_bytes']} B; server on core 0 (one core), wrk on core 1")
    busy = results["busy_before"]
    print(f"machine busy before the run: {busy:.0%}{'  (other work running: figures are skewed)' if busy > 0.05 else ''}")
    print(f"{'target':<32} {'req/s':>9} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>9} (us) {'non-2xx':>7} sock-err")
    for name, row in results["rows"].items():
        lat = row.get("latency_us", {})
        errors = sum(row["socket_errors"].values())
        print(f"{name:<32} {row['requests_per_s']:9.0f} {lat.get('p50', 0):8.0f} {lat.get('p90', 0):8.0f} "
              f"{lat.get('p99', 0):8.0f} {lat.get('max', 0):9.0f}      {row['non_2xx']:7d} {errors}")
    proxy = results["rows"]["proxy hit"]
    print(f"proxy counted {proxy['proxy_counted_hits']} hits for wrk's {proxy['requests']} requests")
    print(f"proxy / nginx: {results['ratio_proxy_over_nginx']:.3f}")
    print(f"proxy {proxy['requests_per_s']:.0f}/s vs target {TARGET_RPS}/s: {results['ratio_proxy_over_target']:.2f}x "
          f"({'meets' if results['meets_target'] else 'MISSES'})")
    if "profile" in results:
        print(f"profile: {results['profile']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--fake", action="store_true", help="also measure the fake upstream (framework floor)")
    parser.add_argument("--profile", type=Path, help="one more proxy run under py-spy; collapsed stacks to FILE")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--raw", action="store_true", help="also print wrk's own output")
    args = parser.parse_args(argv)
    results = run(max(1, args.duration), max(1, args.connections), args.fake,
                  args.profile.resolve() if args.profile else None)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print_report(results)
    if args.raw:
        print("\n--- wrk, proxy ---\n" + results["wrk_output_proxy"] + "--- wrk, nginx ---\n" + results["wrk_output_nginx"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
