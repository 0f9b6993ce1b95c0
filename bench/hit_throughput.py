"""Hit throughput with wrk, proxy on one core, 32 connections (target: >= 10,000 hits/s).

Primes a ~1 KB non-streamed ``/api/chat`` answer (MISS, then HIT), then runs
``wrk -t1 -c32 -d10s`` POSTing the same body, wrk pinned to core 1, against, one after the other:

- the proxy, started under ``taskset -c 0``;
- nginx (one worker, ``taskset -c 0``) answering with the proxy's exact answer bytes and content
  type (``return 200`` from memory; see ``common.Stack.start_nginx``): the physical floor;
- optionally the fake Ollama directly (Starlette on uvicorn, also on core 0; it generates each answer,
  so it is a framework reference, not a floor).

Prints requests/s, latency percentiles, non-2xx and socket-error counts, the proxy's own hit count
for its run (every request should be a hit), and the ratio proxy/nginx. ``--profile FILE`` adds one
more proxy run with py-spy sampling it (figures of that run are not comparable) and writes a
``--format raw`` (collapsed stacks) profile. Never fails on time; all processes are stopped on exit.

    .venv/bin/python bench/hit_throughput.py [--duration 10] [--connections 32] [--rounds 1] [--fake]
                                             [--profile FILE] [--json] [--raw]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHAT_BODY, CLIENT_CPU, REPO, Stack, busy_note, machine_busy, report, revision, taskset

TARGET_RPS = 10_000
WRK = shutil.which("wrk") or "/usr/bin/wrk"
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}
_PREFIX = re.compile(rf"\(.*?(site-packages/|python3\.\d+/|{re.escape(str(REPO))}/)")  # shortens frame paths


def lua_script(path: Path, body: bytes) -> Path:
    """A wrk script POSTing ``body`` as JSON."""
    path.write_text(
        f'wrk.method = "POST"\nwrk.body = [==[{body.decode()}]==]\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def _us(text: str) -> float:
    """wrk's '123.45us' / '1.2ms' / '3.00s' in microseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of a ``wrk --latency`` report."""

    def found(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output)

    def number(pattern: str) -> str:
        match = found(pattern)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{output}")
        return match.group(1)

    result: dict[str, Any] = {
        "requests_per_s": float(number(r"Requests/sec:\s+([\d.]+)")),
        "requests": int(number(r"(\d+) requests in")),
        "non_2xx": int(m.group(1)) if (m := found(r"Non-2xx or 3xx responses: (\d+)")) else 0,
        "socket_errors": {},
    }
    if m := found(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=False))
    if m := found(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)"):
        result["latency_us"] = {"avg": _us(m.group(1)), "stdev": _us(m.group(2)), "max": _us(m.group(3))}
    for pct in ("50", "75", "90", "99"):
        if m := found(rf"\n\s+{pct}%\s+(\S+)"):
            result.setdefault("latency_us", {})[f"p{pct}"] = _us(m.group(1))
    return result


def run_wrk(url: str, script: Path, duration: int, connections: int) -> tuple[dict[str, Any], str]:
    """One wrk run pinned to the client core; (parsed figures, raw output)."""
    cmd = [
        *taskset(CLIENT_CPU),
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        f"{url}/api/chat",
    ]
    output = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return parse_wrk(output), output


def proxy_stats(stack: Stack) -> dict[str, Any]:
    """The proxy's own ``/-/stats``."""
    import urllib.request

    with urllib.request.urlopen(f"{stack.proxy_url}/-/stats", timeout=10) as answer:
        return dict(json.load(answer))


def proxy_hits(stack: Stack) -> int:
    """The proxy's hit total, from ``/-/stats``."""
    return int(proxy_stats(stack)["totals"]["hits"])


TARGET_RSS_MIB = 80  # target: proxy RSS after 100,000 hits
PROXY = "proxy hit"
NGINX = "nginx (physical floor)"
FAKE = "fake Ollama (Starlette+generation)"


def run(duration: int, connections: int, rounds: int, with_fake: bool, profile: Path | None) -> dict[str, Any]:
    """Start everything, run wrk against each target (taking turns for ``rounds`` rounds), stop everything.

    Each target's row is its run with the median requests/s; ``rounds_rps`` lists every run's figure.
    """
    results: dict[str, Any] = {
        "duration_s": duration,
        "connections": connections,
        "rounds": rounds,
        "revision": revision(),
        "busy_before": machine_busy(),
        "runs": [],
    }
    with Stack() as stack:
        stack.start_fake()  # core 0 like the servers; idle while the proxy and nginx are measured
        stack.start_proxy()
        headers, answer = stack.prime("/api/chat", CHAT_BODY)
        results["answer_bytes"] = len(answer)
        results["verified"] = f"proxy answered 200 X-Cache: {headers.get('x-cache')} before measuring"
        stack.start_nginx("/api/chat", answer, headers.get("content-type", "application/json"))
        results["nginx_mode"] = stack.nginx_mode
        script = lua_script(stack.dir / "post.lua", CHAT_BODY)
        targets = {PROXY: stack.proxy_url, NGINX: stack.nginx_url, **({FAKE: stack.fake_url} if with_fake else {})}
        for r in range(rounds):
            for name, url in targets.items():
                before = proxy_hits(stack) if name == PROXY else 0
                figures, output = run_wrk(url, script, duration, connections)
                if name == PROXY:
                    figures["proxy_counted_hits"] = proxy_hits(stack) - before
                results["runs"].append({"target": name, "round": r, **figures, "wrk_output": output})
        stats = proxy_stats(stack)
        results["proxy_rss_bytes"] = stats["resources"]["proxy"]["rss_bytes"]
        results["proxy_total_hits"] = stats["totals"]["hits"]
        if profile is not None:
            results["profile"] = profile_proxy(stack, script, duration, connections, profile)
    results["rows"] = {name: _median_run([run for run in results["runs"] if run["target"] == name]) for name in targets}
    proxy, nginx = results["rows"][PROXY], results["rows"][NGINX]
    results["ratio_proxy_over_nginx"] = proxy["requests_per_s"] / nginx["requests_per_s"]
    results["ratio_proxy_over_target"] = proxy["requests_per_s"] / TARGET_RPS
    results["meets_target"] = proxy["requests_per_s"] >= TARGET_RPS
    return results


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["requests_per_s"])
    return {
        **ordered[(len(ordered) - 1) // 2],
        "rounds_rps": [run["requests_per_s"] for run in runs],
        "non_2xx_total": sum(run["non_2xx"] for run in runs),
        "socket_errors_total": sum(sum(run["socket_errors"].values()) for run in runs),
    }


def profile_proxy(stack: Stack, script: Path, duration: int, connections: int, out: Path) -> str:
    """Sample the running proxy with py-spy (on the client core) during one more wrk run."""
    spy = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    if not Path(spy).exists():
        return "py-spy not found (.venv/bin/pip install py-spy)"
    cmd = [
        *taskset(CLIENT_CPU),
        spy,
        "record",
        "--pid",
        str(stack.proxy_pid),
        "--format",
        "raw",
        "--rate",
        "250",
        "--nonblocking",
        "--duration",
        str(duration),
        "-o",
        str(out),
    ]
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        figures, _ = run_wrk(stack.proxy_url, script, duration, connections)
    finally:
        _, err = spy_proc.communicate(timeout=duration + 60)
    if spy_proc.returncode != 0:
        return f"py-spy failed: {err.strip()[-500:]}"
    return f"wrote {out} ({figures['requests_per_s']:.0f} req/s while sampled)\n" + summarise_profile(out)


def summarise_profile(path: Path, top: int = 15) -> str:
    """The functions (with line) where the sampled stacks end, heaviest first: where the time goes."""
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            leaves[_PREFIX.sub("(", stack.split(";")[-1])] += int(count)
    total = sum(leaves.values()) or 1
    lines = [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in leaves.most_common(top)]
    return f"self time by frame ({total} samples):\n" + "\n".join(lines)


def print_report(results: dict[str, Any], raw: bool = False) -> None:
    """The human-readable report (``raw``: wrk's own output of every run too)."""
    rounds = results["rounds"]
    print(
        f"hit throughput at {results['revision']}: wrk -t1 -c{results['connections']} -d{results['duration_s']}s "
        f"POST /api/chat, {rounds} round(s); answer body {results['answer_bytes']} B; "
        "server on core 0, wrk on core 1"
    )
    busy = results["busy_before"]
    print(busy_note(busy))
    print(
        f"{'target':<34} {'req/s':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} (us)  non-2xx sock-err"
        + ("  req/s of each round" if rounds > 1 else "")
    )
    for name, row in results["rows"].items():
        lat = row.get("latency_us", {})
        each = "  " + " ".join(f"{rps:.0f}" for rps in row["rounds_rps"]) if rounds > 1 else ""
        print(
            f"{name:<34} {row['requests_per_s']:8.0f} {lat.get('p50', 0):7.0f} {lat.get('p90', 0):7.0f} "
            f"{lat.get('p99', 0):7.0f} {lat.get('max', 0):8.0f}       {row['non_2xx_total']:7d} "
            f"{row['socket_errors_total']:8d}{each}"
        )
    if rounds > 1:
        print("(each row: the run with the median req/s; non-2xx and socket errors summed over all runs)")
    proxy = results["rows"][PROXY]
    print(results["verified"])
    print(
        f"proxy counted {proxy['proxy_counted_hits']} hits for wrk's {proxy['requests']} requests "
        "(wrk leaves out those in flight at the end)"
    )
    print(f"nginx: one worker, {results['nginx_mode']}, same bytes and content-type as the proxy's hit")
    print(
        f"proxy RSS after {results['proxy_total_hits']:,} hits: {results['proxy_rss_bytes'] / 2**20:.1f} MiB"
        f" (target <= {TARGET_RSS_MIB} MiB: {results['proxy_rss_bytes'] / 2**20 / TARGET_RSS_MIB:.2f}x)"
    )
    print(f"proxy / nginx: {results['ratio_proxy_over_nginx']:.3f}")
    print(
        f"proxy {proxy['requests_per_s']:.0f}/s vs target {TARGET_RPS}/s: {results['ratio_proxy_over_target']:.2f}x "
        f"({'meets' if results['meets_target'] else 'MISSES'})"
    )
    if "profile" in results:
        print(f"profile: {results['profile']}")
    if raw:
        for run in results["runs"]:
            print(f"\n--- wrk, {run['target']}, round {run['round'] + 1} ---\n{run['wrk_output']}", end="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--rounds", type=int, default=1, help="targets take turns this many times (default 1)")
    parser.add_argument(
        "--fake", action="store_true", help="also measure the fake Ollama directly (framework reference)"
    )
    parser.add_argument("--profile", type=Path, help="one more proxy run under py-spy; collapsed stacks to FILE")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--raw", action="store_true", help="also print wrk's own output")
    args = parser.parse_args(argv)
    profile = args.profile.resolve() if args.profile else None
    return report(
        lambda: run(max(1, args.duration), max(1, args.connections), max(1, args.rounds), args.fake, profile),
        args.json,
        lambda results: print_report(results, args.raw),
    )


if __name__ == "__main__":
    sys.exit(main())
