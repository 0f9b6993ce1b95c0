"""Hit latency over one keep-alive connection, client-side, on loopback (target: p50 <= 250 us, p99 <= 1 ms).

Primes a ~1 KB non-streamed ``/api/chat`` answer through the proxy (MISS, then HIT), then times N hits
with a raw socket sending a pre-built HTTP/1.1 request and reading the answer by Content-Length (or to the
last chunk of a chunked stream). In the same run it times the same request against:

- the fake Ollama directly (a Starlette app on uvicorn with zero delay; it generates the answer's text
  per request, so it is a *framework reference*, not a floor);
- nginx (one worker) answering with the proxy's exact answer bytes (the *physical floor*);
- a streamed ``/api/generate`` hit replayed by the proxy (time to the last byte).

Each target keeps its own connection; the targets take turns in ``--rounds`` rounds, so a slow spell of
the machine (this is a VM: figures drift by +-30% from one minute to the next) hits them alike and the
ratios stay meaningful. Servers run pinned to core 0, this client to core 1. Never fails on time.

    .venv/bin/python bench/hit_latency.py [--requests 5000] [--warmup 500] [--rounds 5] [--json] [--no-nginx]
"""

from __future__ import annotations

import argparse
import gc
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CHAT_BODY,
    CLIENT_CPU,
    GENERATE_BODY,
    Stack,
    busy_note,
    latency_counts,
    latency_options,
    machine_busy,
    pin_self,
    post,
    print_latency_rows,
    raw_request,
    report,
    revision,
)

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
        need = end + 4 + int(head[at + 17 : stop if stop > 0 else len(head)])
        while len(data) < need:
            data += sock.recv(65536)
        return len(data)
    if b"transfer-encoding: chunked" not in head:
        raise RuntimeError(f"answer without a length: {head!r}")
    while not data.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
        data += sock.recv(65536)
    return len(data)


class Client:
    """One keep-alive connection to ``url`` repeating the same pre-built request."""

    def __init__(self, url: str, path: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.request = raw_request(url, path, body)
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wire_bytes = 0

    def once(self) -> None:
        """One untimed round trip."""
        self.sock.sendall(self.request)
        self.wire_bytes = _read_answer(self.sock)

    def warm(self, requests: int) -> None:
        """Untimed round trips (fills caches on both sides, settles the connection)."""
        for _ in range(requests):
            self.once()

    def timed(self, requests: int) -> list[float]:
        """Latencies in microseconds of ``requests`` round trips (GC off meanwhile)."""
        samples = [0.0] * requests
        sock, request, clock = self.sock, self.request, time.perf_counter_ns
        gc.disable()
        try:
            for i in range(requests):
                started = clock()
                sock.sendall(request)
                _read_answer(sock)
                samples[i] = (clock() - started) / 1000.0
        finally:
            gc.enable()
        return samples

    def close(self) -> None:
        self.sock.close()


def measure(
    targets: dict[str, tuple[str, str, bytes]], requests: int, warmup: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Time every target over its own connection (:func:`interleaved`); closes them after."""
    clients = {name: Client(*target) for name, target in targets.items()}
    try:
        return interleaved(clients, requests, warmup, rounds)
    finally:
        for client in clients.values():
            client.close()


def interleaved(clients: dict[str, Client], requests: int, warmup: int, rounds: int) -> dict[str, dict[str, float]]:
    """Time ready clients in turn, in ``rounds`` rounds each starting with the next client, so that a slow spell
    of the (virtual) machine hits every target alike and none is always first; percentiles over the pooled
    samples."""
    pooled: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        client.warm(warmup)
    names = list(clients)
    for r in range(rounds):
        share = requests // rounds + (1 if r < requests % rounds else 0)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            pooled[name] += clients[name].timed(share)
    return {name: {**summary(pooled[name]), "wire_bytes": clients[name].wire_bytes} for name in clients}


def summary(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in microseconds."""
    ordered = sorted(samples)
    n = len(ordered)
    figures = {f"p{round(q * 100)}": ordered[min(n - 1, int(q * n))] for q in (0.50, 0.90, 0.99)}
    return {**figures, "max": ordered[-1], "mean": sum(ordered) / n}


PROXY = "proxy hit, /api/chat"
FAKE = "fake Ollama direct (Starlette+generation)"
NGINX = "nginx, same bytes (physical floor)"
STREAM = "proxy hit, streamed /api/generate, to last byte"


def run(requests: int, warmup: int, rounds: int, with_nginx: bool) -> dict[str, Any]:
    """Start everything, measure every target, stop everything; returns the results."""
    pin_self(CLIENT_CPU)
    results: dict[str, Any] = {
        "revision": revision(),
        "requests": requests,
        "warmup": warmup,
        "rounds": rounds,
        "busy_before": machine_busy(),
    }
    with Stack() as stack:
        stack.start_fake()
        stack.start_proxy()
        headers, answer = stack.prime("/api/chat", CHAT_BODY)
        _, streamed = stack.prime("/api/generate", GENERATE_BODY)
        results.update(answer_bytes=len(answer), stream_bytes=len(streamed), stream_chunks=streamed.count(b"\n"))
        targets = {PROXY: (stack.proxy_url, "/api/chat", CHAT_BODY), FAKE: (stack.fake_url, "/api/chat", CHAT_BODY)}
        if with_nginx:
            stack.start_nginx("/api/chat", answer, headers.get("content-type", "application/json"))
            targets[NGINX] = (stack.nginx_url, "/api/chat", CHAT_BODY)
            results["nginx_mode"] = stack.nginx_mode
        targets[STREAM] = (stack.proxy_url, "/api/generate", GENERATE_BODY)
        rows = measure(targets, requests, warmup, rounds)
        code, after, _ = post(stack.proxy_url, "/api/chat", CHAT_BODY)  # still a hit afterwards?
        results["still_hit_after"] = code == 200 and after.get("x-cache") == "HIT"
    results["rows"] = rows
    proxy = rows[PROXY]
    ratios = {
        "proxy_p50_over_fake_p50": proxy["p50"] / rows[FAKE]["p50"],
        "proxy_p50_over_target": proxy["p50"] / TARGET_P50_US,
        "proxy_p99_over_target": proxy["p99"] / TARGET_P99_US,
    }
    if NGINX in rows:
        ratios["proxy_p50_over_nginx_p50"] = proxy["p50"] / rows[NGINX]["p50"]
    results["ratios"] = ratios
    results["meets_target"] = proxy["p50"] <= TARGET_P50_US and proxy["p99"] <= TARGET_P99_US
    return results


def print_table(results: dict[str, Any]) -> None:
    """The human-readable report."""
    rows: dict[str, dict[str, float]] = results["rows"]
    ratios: dict[str, float] = results["ratios"]
    busy: float = results["busy_before"]
    print(
        f"hit latency at {results['revision']}: one keep-alive connection per target, {results['requests']} "
        f"requests each after {results['warmup']} warm-up, interleaved in {results['rounds']} rounds; "
        "servers on core 0, client on core 1"
    )
    print(busy_note(busy))
    print_latency_rows(rows, "target")
    print(
        f"answer body {results['answer_bytes']} B; stream {results['stream_chunks']} chunks, "
        f"{results['stream_bytes']} B ({rows[STREAM]['p50'] / results['stream_chunks']:.1f} us per chunk at p50)"
    )
    if "nginx_mode" in results:
        print(f"nginx: one worker, {results['nginx_mode']}")
        print(f"proxy p50 / nginx p50: {ratios['proxy_p50_over_nginx_p50']:.2f}x")
    print(f"proxy p50 / fake Ollama p50: {ratios['proxy_p50_over_fake_p50']:.2f}x")
    proxy = rows[PROXY]
    for name, value, target in (("p50", proxy["p50"], TARGET_P50_US), ("p99", proxy["p99"], TARGET_P99_US)):
        print(
            f"proxy {name} {value:.1f} us vs target {target:.0f} us: {value / target:.2f}x "
            f"({'meets' if value <= target else 'MISSES'})"
        )
    if not results["still_hit_after"]:
        print("warning: the proxy no longer answered HIT after the run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    latency_options(parser, "target", "targets", requests=5000, warmup=500, rounds=5)
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx reference")
    args = parser.parse_args(argv)
    return report(lambda: run(*latency_counts(args), not args.no_nginx), args.json, print_table)


if __name__ == "__main__":
    sys.exit(main())
