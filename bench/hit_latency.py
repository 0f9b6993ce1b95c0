"""Hit latency over one keep-alive connection, client-side, on loopback (SPEC §10: p50 <= 250 us, p99 <= 1 ms).

Primes a ~1 KB non-streamed ``/api/chat`` answer through the proxy (MISS, then HIT), then times N hits
with a raw socket sending a pre-built HTTP/1.1 request and reading the answer by Content-Length (or to the
last chunk of a chunked stream). In the same run it times the same request against:

- the fake Ollama directly (a Starlette app on uvicorn answering at once: a *framework floor*);
- nginx serving the proxy's exact answer bytes as a static file (the *physical floor*);
- a streamed ``/api/generate`` hit replayed by the proxy (time to the last byte).

Servers run pinned to core 0, this client to core 1. Never fails on time: it prints figures.

    .venv/bin/python bench/hit_latency.py [--requests 5000] [--warmup 500] [--json] [--no-nginx]
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHAT_BODY, CLIENT_CPU, GENERATE_BODY, Stack, machine_busy, pin_self, post, raw_request  # noqa: E402

TARGET_P50_US = 250.0
TARGET_P99_US = 1000.0


def _read_answer(sock: socket.socket) -> int:
    """Read one whole HTTP/1.1 answer from ``sock``; returns its size in bytes (headers included)."""
    data = sock.recv(65536)
    while (end := data.find(b"\r\n\r\n")) < 0:
        data += sock.recv(65536)
    head = data[:end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        need = end + 4 + int(head[at + 17:stop if stop > 0 else len(head)])
        while len(data) < need:
            data += sock.recv(65536)
        return len(data)
    if b"transfer-encoding: chunked" not in head:
        raise RuntimeError(f"answer without a length: {head!r}")
    while not data.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
        data += sock.recv(65536)
    return len(data)


def measure(url: str, path: str, body: bytes, requests: int, warmup: int) -> tuple[list[float], int]:
    """Latencies in microseconds of ``requests`` round trips on one connection, and the answer size."""
    parts = urlsplit(url)
    request = raw_request(url, path, body)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        size = 0
        for _ in range(warmup):
            sock.sendall(request)
            size = _read_answer(sock)
        samples = [0.0] * requests
        clock = time.perf_counter_ns
        gc.disable()
        try:
            for i in range(requests):
                started = clock()
                sock.sendall(request)
                _read_answer(sock)
                samples[i] = (clock() - started) / 1000.0
        finally:
            gc.enable()
    return samples, size


def summary(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in microseconds."""
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1],
            "mean": sum(ordered) / len(ordered)}


def run(requests: int, warmup: int, with_nginx: bool) -> dict[str, object]:
    """Start everything, measure every target, stop everything; returns the results."""
    pin_self(CLIENT_CPU)
    results: dict[str, object] = {"requests": requests, "warmup": warmup, "busy_before": machine_busy()}
    rows: dict[str, dict[str, float]] = {}
    with Stack() as stack:
        stack.start_fake()
        stack.start_proxy()
        headers, answer = stack.prime("/api/chat", CHAT_BODY)
        _, streamed = stack.prime("/api/generate", GENERATE_BODY)
        results["answer_bytes"] = len(answer)
        results["stream_bytes"] = len(streamed)
        results["stream_chunks"] = streamed.count(b"\n")
        targets: list[tuple[str, str, str, bytes]] = [
            ("proxy hit /api/chat", stack.proxy_url, "/api/chat", CHAT_BODY),
            ("fake upstream direct (framework floor)", stack.fake_url, "/api/chat", CHAT_BODY),
        ]
        if with_nginx:
            stack.start_nginx("/api/chat", answer, headers.get("content-type", "application/json"))
            targets.append(("nginx static, same bytes (physical floor)", stack.nginx_url, "/api/chat", CHAT_BODY))
        targets.append((f"proxy hit streamed /api/generate ({results['stream_chunks']} chunks, to last byte)",
                        stack.proxy_url, "/api/generate", GENERATE_BODY))
        for name, url, path, body in targets:
            samples, size = measure(url, path, body, requests, warmup)
            rows[name] = {**summary(samples), "wire_bytes": size}
        code, after, _ = post(stack.proxy_url, "/api/chat", CHAT_BODY)  # still a hit afterwards?
        results["still_hit_after"] = code == 200 and after.get("x-cache") == "HIT"
    results["rows"] = rows
    proxy = rows["proxy hit /api/chat"]
    ratios = {"proxy_p50_over_fake_p50": proxy["p50"] / rows["fake upstream direct (framework floor)"]["p50"],
              "proxy_p50_over_target": proxy["p50"] / TARGET_P50_US,
              "proxy_p99_over_target": proxy["p99"] / TARGET_P99_US}
    nginx = rows.get("nginx static, same bytes (physical floor)")
    if nginx:
        ratios["proxy_p50_over_nginx_p50"] = proxy["p50"] / nginx["p50"]
    results["ratios"] = ratios
    results["meets_target"] = proxy["p50"] <= TARGET_P50_US and proxy["p99"] <= TARGET_P99_US
    return results


def print_table(results: dict[str, object]) -> None:
    """The human-readable report."""
    rows: dict[str, dict[str, float]] = results["rows"]  # type: ignore[assignment]
    ratios: dict[str, float] = results["ratios"]  # type: ignore[assignment]
    print(f"hit latency, one keep-alive connection, {results['requests']} requests after {results['warmup']} "
          f"warm-up; answer body {results['answer_bytes']} B; servers on core 0, client on core 1")
    busy: float = results["busy_before"]  # type: ignore[assignment]
    print(f"machine busy before the run: {busy:.0%}{'  (other work running: figures are skewed)' if busy > 0.05 else ''}")
    width = max(len(name) for name in rows)
    print(f"{'target':<{width}}  {'p50':>8} {'p90':>8} {'p99':>8} {'max':>9} {'mean':>8}  (us)  wire B")
    for name, row in rows.items():
        print(f"{name:<{width}}  {row['p50']:8.1f} {row['p90']:8.1f} {row['p99']:8.1f} {row['max']:9.1f} "
              f"{row['mean']:8.1f}        {int(row['wire_bytes'])}")
    proxy = rows["proxy hit /api/chat"]
    if "proxy_p50_over_nginx_p50" in ratios:
        print(f"proxy p50 / nginx p50:        {ratios['proxy_p50_over_nginx_p50']:.2f}x")
    print(f"proxy p50 / fake-upstream p50: {ratios['proxy_p50_over_fake_p50']:.2f}x")
    print(f"proxy p50 {proxy['p50']:.1f} us vs target {TARGET_P50_US:.0f} us: {ratios['proxy_p50_over_target']:.2f}x "
          f"({'meets' if proxy['p50'] <= TARGET_P50_US else 'MISSES'})")
    print(f"proxy p99 {proxy['p99']:.1f} us vs target {TARGET_P99_US:.0f} us: {ratios['proxy_p99_over_target']:.2f}x "
          f"({'meets' if proxy['p99'] <= TARGET_P99_US else 'MISSES'})")
    if not results["still_hit_after"]:
        print("warning: the proxy no longer answered HIT after the run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="timed requests per target (default 5000)")
    parser.add_argument("--warmup", type=int, default=500, help="untimed requests first (default 500)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx reference")
    args = parser.parse_args(argv)
    results = run(max(1, args.requests), max(0, args.warmup), not args.no_nginx)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
