"""Miss overhead: what the proxy adds to an answer it must fetch, and what a miss costs it in CPU (targets:
<= 0.5 ms added to the first byte, non-streamed and streamed; <= 0.1 ms added per streamed chunk; <= 1 ms
of proxy CPU per miss).

The upstream is ``bench/raw_upstream.py``, a minimal HTTP/1.1 server on raw asyncio sockets started by this
script in a child process, so what is measured is the proxy and not a framework behind it: ``/api/chat``
answers a fixed ~1 KB JSON, ``/api/generate`` streams ``--chunks`` NDJSON lines (``--chunk-gap-ms`` apart;
0 = as fast as it can), both ending as Ollama ends an answer. Every request carries a distinct prompt, so
every proxy answer is a real MISS (checked on its ``X-Cache`` header) that is recorded and stored.

For each upstream mode (``--mode``): ``nodelay`` (the upstream sets TCP_NODELAY, as Go's Ollama does) and
``nagle`` (it does not, as cpp-httplib servers do not: its second write waits for the ACK of the first, and
a peer that delays its ACK stalls it up to 40 ms), a raw-socket client (``bench/raw_client.py``) sends N
requests per route to the upstream directly and through the proxy, alternating (and alternating which goes
first), ``--gap-ms`` apart so the proxy's background store write settles. Figures, at p50 over the N requests:

- added time to the first body byte (proxy minus direct), non-streamed and streamed;
- added time per streamed chunk: (added time to the last byte - added time to the first) / (chunks - 1),
  what each further chunk costs on its way; and the added time to the last byte / chunks;
- the proxy process's CPU (user + system, psutil) per miss, per route, and the extra CPU per streamed chunk.

Servers run on core 0, this client on core 1. Prints figures and ratios against the direct reference of the
same run; never fails on time.

    .venv/bin/python bench/miss_overhead.py [--requests 300] [--warmup 30] [--chunks 32] [--chunk-gap-ms 0]
        [--gap-ms 5] [--mode both|nodelay|nagle] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENT_CPU, Stack, busy_note, machine_busy, pin_self, raw_request, revision
from raw_client import Conn, body_for
from raw_upstream import serve, start_upstream

TARGET_TTFB_US = 500.0
TARGET_CHUNK_US = 100.0
TARGET_CPU_US = 1000.0
MODES = ("nodelay", "nagle")


def check(head: bytes, what: str, miss: bool) -> None:
    """Raise unless the answer says 200 (and, through the proxy, X-Cache: MISS)."""
    if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        raise RuntimeError(f"{what}: {status}")
    if miss and b"\r\nx-cache: miss" not in head:
        raise RuntimeError(f"{what}: not a MISS: {head.decode(errors='replace')}")


def cpu_us(process: psutil.Process) -> float:
    """CPU time (user + system, all threads) used so far by ``process``, in microseconds."""
    times = process.cpu_times()
    return (times.user + times.system) * 1e6


def measure(
    direct: Conn, proxy: Conn, process: psutil.Process, path: str, requests: int, warmup: int, gap_s: float, nonce: str
) -> dict[str, Any]:
    """``warmup + requests`` distinct requests to ``path``, direct and through the proxy alternately."""
    first: dict[str, list[float]] = {"direct": [], "proxy": []}
    last: dict[str, list[float]] = {"direct": [], "proxy": []}
    cpu_proxy = 0.0
    gc.disable()
    try:
        for i in range(warmup + requests):
            body = body_for(path, f"Why is miss {nonce}-{i} slower than a hit?")
            legs = [("direct", direct), ("proxy", proxy)]
            for name, conn in legs if i % 2 == 0 else legs[::-1]:
                before = cpu_us(process) if name == "proxy" else 0.0
                head, to_first, to_last = conn.exchange(raw_request(conn.url, path, body))
                time.sleep(gap_s)  # the proxy's store write runs in this pause, and is counted
                if name == "proxy" and i >= warmup:
                    cpu_proxy += cpu_us(process) - before
                check(head, f"{name} {path}", miss=name == "proxy")
                if i >= warmup:
                    first[name].append(to_first)
                    last[name].append(to_last)
    finally:
        gc.enable()
    med = lambda xs: statistics.median(xs)  # noqa: E731
    paired_first = [p - d for d, p in zip(first["direct"], first["proxy"], strict=True)]
    paired_last = [p - d for d, p in zip(last["direct"], last["proxy"], strict=True)]
    return {
        "direct_first_p50": med(first["direct"]),
        "proxy_first_p50": med(first["proxy"]),
        "direct_last_p50": med(last["direct"]),
        "proxy_last_p50": med(last["proxy"]),
        "added_first_p50": med(first["proxy"]) - med(first["direct"]),
        "added_last_p50": med(last["proxy"]) - med(last["direct"]),
        "added_first_paired_p50": med(paired_first),
        "added_last_paired_p50": med(paired_last),
        "added_first_paired_p90": sorted(paired_first)[int(0.9 * len(paired_first))],
        "proxy_cpu_us_per_miss": cpu_proxy / requests,
        "n": requests,
    }


def run_mode(mode: str, requests: int, warmup: int, chunks: int, chunk_gap_ms: float, gap_ms: float) -> dict[str, Any]:
    """One upstream mode: start the upstream and the proxy, measure both routes, stop everything."""
    nonce = os.urandom(4).hex()
    with Stack() as stack:
        start_upstream(stack, mode == "nodelay", chunks, chunk_gap_ms)
        stack.start_proxy()
        process = psutil.Process(stack.proxy_pid)
        direct, proxy = Conn(stack.fake_url), Conn(stack.proxy_url)
        try:
            chat = measure(direct, proxy, process, "/api/chat", requests, warmup, gap_ms / 1000, nonce)
            stream = measure(direct, proxy, process, "/api/generate", requests, warmup, gap_ms / 1000, nonce)
        finally:
            direct.close()
            proxy.close()
    stream["added_per_chunk"] = (stream["added_last_paired_p50"] - stream["added_first_paired_p50"]) / (chunks - 1)
    stream["added_last_over_chunks"] = stream["added_last_paired_p50"] / chunks
    stream["cpu_us_per_chunk"] = (stream["proxy_cpu_us_per_miss"] - chat["proxy_cpu_us_per_miss"]) / (chunks - 1)
    return {"/api/chat": chat, "/api/generate": stream}


def run(
    modes: list[str], requests: int, warmup: int, chunks: int, chunk_gap_ms: float, gap_ms: float
) -> dict[str, Any]:
    pin_self(CLIENT_CPU)
    results: dict[str, Any] = {
        "revision": revision(),
        "busy_before": machine_busy(),
        "requests": requests,
        "warmup": warmup,
        "chunks": chunks,
        "chunk_gap_ms": chunk_gap_ms,
        "gap_ms": gap_ms,
        "modes": {},
    }
    for mode in modes:
        results["modes"][mode] = run_mode(mode, requests, warmup, chunks, chunk_gap_ms, gap_ms)
    return results


def print_report(r: dict[str, Any]) -> None:
    """The human-readable report (microseconds unless said)."""
    print(
        f"miss overhead at {r['revision']}: {r['requests']} distinct requests per route after {r['warmup']} "
        f"warm-up, each to the upstream directly and through the proxy, alternating, {r['gap_ms']:g} ms apart; "
        f"streamed answers of {r['chunks']} chunks {r['chunk_gap_ms']:g} ms apart; servers on core 0, client on core 1"
    )
    print(busy_note(r["busy_before"]))
    for mode, m in r["modes"].items():
        chat, gen = m["/api/chat"], m["/api/generate"]
        print(f"upstream {'sets TCP_NODELAY' if mode == 'nodelay' else 'without TCP_NODELAY (Nagle on)'}:")
        print(f"  {'p50, us':<44}{'direct':>10}{'proxy':>10}{'added':>10}{'paired':>10}")
        for label, row, key in (
            ("first byte, non-streamed /api/chat", chat, "first"),
            ("last byte, non-streamed /api/chat", chat, "last"),
            ("first byte, streamed /api/generate", gen, "first"),
            (f"last byte, streamed ({r['chunks']} chunks)", gen, "last"),
        ):
            print(
                f"    {label:<42}{row[f'direct_{key}_p50']:10.1f}{row[f'proxy_{key}_p50']:10.1f}"
                f"{row[f'added_{key}_p50']:10.1f}{row[f'added_{key}_paired_p50']:10.1f}"
            )
        print(
            f"    added per further chunk {gen['added_per_chunk']:.1f} us; added to the last byte / chunks "
            f"{gen['added_last_over_chunks']:.1f} us"
        )
        print(
            f"    proxy CPU per miss: non-streamed {chat['proxy_cpu_us_per_miss']:.0f} us, streamed "
            f"{gen['proxy_cpu_us_per_miss']:.0f} us ({gen['cpu_us_per_chunk']:.1f} us per further chunk)"
        )
        verdicts = [
            ("added first byte, non-streamed", chat["added_first_paired_p50"], TARGET_TTFB_US),
            ("added first byte, streamed", gen["added_first_paired_p50"], TARGET_TTFB_US),
            ("added per chunk", gen["added_per_chunk"], TARGET_CHUNK_US),
            ("proxy CPU per non-streamed miss", chat["proxy_cpu_us_per_miss"], TARGET_CPU_US),
            ("proxy CPU per streamed miss", gen["proxy_cpu_us_per_miss"], TARGET_CPU_US),
        ]
        for label, value, target in verdicts:
            print(
                f"    {label}: {value:.1f} us vs target {target:.0f} us: {value / target:.2f}x "
                f"({'meets' if value <= target else 'MISSES'})"
            )
        if mode == "nagle" and chat["added_first_paired_p90"] > 20_000:
            print(
                "    a delayed-ACK stall: p90 of the added first byte is "
                f"{chat['added_first_paired_p90'] / 1000:.1f} ms"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per route and mode (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests first, per route (default 30)")
    parser.add_argument("--chunks", type=int, default=32, help="NDJSON lines of a streamed answer (default 32)")
    parser.add_argument("--chunk-gap-ms", type=float, default=0.0, help="pause between streamed lines (default 0)")
    parser.add_argument("--gap-ms", type=float, default=5.0, help="pause after each request (default 5)")
    parser.add_argument("--mode", choices=("both", *MODES), default="both", help="the upstream's TCP_NODELAY")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a report")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chunks = max(2, args.chunks)
    if args.serve_upstream:  # only the upstream, in the foreground: the same server bench/raw_upstream.py runs
        return serve(args.mode != "nagle", chunks, args.chunk_gap_ms)
    modes = list(MODES) if args.mode == "both" else [args.mode]
    try:
        results = run(
            modes,
            max(1, args.requests),
            max(0, args.warmup),
            chunks,
            max(0.0, args.chunk_gap_ms),
            max(0.0, args.gap_ms),
        )
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - a broken stack is reported, never a failing exit
        print(f"miss_overhead: could not measure: {error}", file=sys.stderr)
        return 0
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
