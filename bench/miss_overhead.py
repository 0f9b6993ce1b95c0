"""Miss overhead: what the proxy adds to an answer it must fetch (targets: added time to first byte
<= 1 ms at p50; streamed chunks forwarded with <= 0.2 ms added delay each).

1. Time to first body byte. N requests per route, each with a unique prompt, so every proxy answer is
   a MISS (checked on its ``X-Cache`` header). Each request goes to the fake Ollama directly and through
   the proxy, the two alternating (and alternating which goes first), ``--gap-ms`` apart so the proxy's
   background store write settles; the added TTFB is proxy minus direct at each percentile.
2. Streamed chunks. The fake is set to 50 tokens 20 ms apart; each stream is read from a raw socket,
   stamping every NDJSON line's arrival. Two measures: the *transit* of each chunk (client arrival minus
   the fake's ``created_at``, stamped as the chunk is produced; proxy minus direct at each percentile),
   immune to the fake's pacing jitter; and the position drift (t_proxy[i] - t_proxy[0]) -
   (t_direct[i] - t_direct[0]), which only sees delay that varies or accumulates (a constant delay per
   chunk cancels out) and carries the fake's pacing jitter of i chunks (printed beside it).

Servers run on core 0, this client on core 1, over one keep-alive raw-socket connection per target.
Prints figures and ratios against the direct reference of the same run; never fails on time.

    .venv/bin/python bench/miss_overhead.py [--requests 300] [--warmup 20] [--streams 10] [--gap-ms 5] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import gc
import itertools
import json
import os
import re
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENT_CPU, Stack, busy_note, machine_busy, pin_self, post, raw_request, revision

TARGET_TTFB_US = 1000.0
TARGET_CHUNK_US = 200.0
CHUNK_DELAY_MS, CHUNK_TOKENS = 20, 50
LENGTH_RE = re.compile(rb"\r\ncontent-length: *(\d+)")
Pieces = list[tuple[int, bytes]]  # (clock ns on arrival, bytes) for each recv()


def body_for(path: str, prompt: str) -> bytes:
    """A non-streamed /api/chat or a streamed (Ollama's default) /api/generate request."""
    if path == "/api/chat":
        doc: dict[str, Any] = {"model": "llama3.2", "stream": False, "options": {"temperature": 0},
                               "messages": [{"role": "user", "content": prompt}]}
    else:
        doc = {"model": "llama3.2", "prompt": prompt, "options": {"temperature": 0}}
    return json.dumps(doc, separators=(",", ":")).encode()


class Conn:
    """One keep-alive raw-socket connection; :meth:`exchange` stamps every recv() of an answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(self, request: bytes, clock: Callable[[], int]) -> tuple[int, Pieces]:
        """Send ``request``; returns (send time, stamped pieces) once the whole answer is in."""
        sock, data, need = self.sock, b"", -1  # need: the answer's size once known; -2 = chunked
        pieces: Pieces = []
        started = clock()
        sock.sendall(request)
        while True:
            piece = sock.recv(65536)
            pieces.append((clock(), piece))
            if not piece:
                raise ConnectionError(f"{self.url} closed the connection")
            data += piece
            if need == -1 and (end := data.find(b"\r\n\r\n")) >= 0:
                found = LENGTH_RE.search(data[:end].lower())
                need = end + 4 + int(found[1]) if found else -2
            if len(data) >= need >= 0 or (need == -2 and data.endswith(b"\r\n0\r\n\r\n")):
                return started, pieces


def parse(pieces: Pieces) -> tuple[bytes, int, list[tuple[int, bytes]]]:
    """(lower-cased head, arrival of the first body byte, [(arrival, line)] of the body's lines)."""
    data = b"".join(p for _, p in pieces)
    ends = list(itertools.accumulate(len(p) for _, p in pieces))  # offset just past each piece
    arrival = lambda offset: pieces[bisect.bisect_right(ends, offset)][0]  # noqa: E731
    end = data.find(b"\r\n\r\n")
    head, at = data[:end].lower(), end + 4
    spans: list[tuple[int, int]] = []  # payload byte ranges on the wire
    if b"transfer-encoding: chunked" in head:
        while (size := int(data[at:data.index(b"\r\n", at)].split(b";")[0], 16)):
            at = data.index(b"\r\n", at) + 2
            spans.append((at, at + size))
            at += size + 2
    else:
        spans.append((at, len(data)))
    lines: list[tuple[int, bytes]] = []
    line = b""
    for start, stop in spans:
        chunk = data[start:stop]
        pos = 0
        while (nl := chunk.find(b"\n", pos)) >= 0:
            lines.append((arrival(start + nl), line + chunk[pos:nl]))
            line, pos = b"", nl + 1
        line += chunk[pos:]
    return head, arrival(spans[0][0]) if spans else arrival(len(data) - 1), lines


def check_status(head: bytes, what: str) -> None:
    """Raise unless the answer's status line says 200."""
    if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        raise RuntimeError(f"{what}: {status}")


def summary(samples: list[float], quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)) -> dict[str, float]:
    """The given percentiles (p50...), max, mean and count of ``samples``."""
    ordered = sorted(samples)
    n = len(ordered)
    figures = {f"p{round(q * 100)}": ordered[min(n - 1, int(q * n))] for q in quantiles}
    return {**figures, "max": ordered[-1], "mean": sum(ordered) / n, "n": n}


def created_ns(line: bytes) -> int:
    """The fake's ``created_at`` stamp (Go's RFC 3339 with nanoseconds, UTC) in Unix ns."""
    stamp = json.loads(line)["created_at"].rstrip("Z")
    base, _, fraction = stamp.partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(fraction.ljust(9, "0"))


def cpu_us(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by process ``pid``, in microseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


def measure_ttfb(direct: Conn, proxy: Conn, proxy_pid: int, paths: list[str], requests: int, warmup: int,
                 gap_s: float, nonce: str) -> dict[str, Any]:
    """Unique-prompt requests, direct and through the proxy alternately; TTFB in microseconds."""
    out: dict[str, Any] = {}
    for path in paths:
        prompts = [f"Why is miss {nonce}-{i} slower than a hit?" for i in range(warmup + requests)]
        plans = [(raw_request(direct.url, path, body_for(path, p)), raw_request(proxy.url, path, body_for(path, p)))
                 for p in prompts]
        times: dict[str, list[float]] = {"direct": [], "proxy": []}
        misses, cpu_before = 0, cpu_us(proxy_pid)
        gc.disable()
        try:
            for i, (to_direct, to_proxy) in enumerate(plans):
                legs = [("direct", direct, to_direct), ("proxy", proxy, to_proxy)]
                for name, conn, request in legs if i % 2 == 0 else legs[::-1]:
                    started, pieces = conn.exchange(request, time.perf_counter_ns)
                    head, first, _ = parse(pieces)
                    check_status(head, f"{name} {path}")
                    if i >= warmup:
                        times[name].append((first - started) / 1000)
                        misses += name == "proxy" and b"\r\nx-cache: miss" in head
                    time.sleep(gap_s)
        finally:
            gc.enable()
        rows = {name: summary(times[name]) for name in times}
        paired = [p - d for d, p in zip(times["direct"], times["proxy"], strict=True)]
        added = {q: rows["proxy"][q] - rows["direct"][q] for q in ("p50", "p90", "p99")}
        out[path] = {**rows, "added": added, "paired": summary(paired), "misses": misses,
                     "proxy_cpu_us_per_miss": (cpu_us(proxy_pid) - cpu_before) / len(plans)}
    return out


def measure_chunks(direct: Conn, proxy: Conn, streams: int, nonce: str) -> dict[str, Any]:
    """Streams read alternately direct and through the proxy; per-chunk figures in microseconds."""
    transit: dict[str, list[float]] = {"direct": [], "proxy": []}
    drift: list[float] = []
    jitter: list[float] = []  # direct inter-arrival minus the configured spacing: the fake's pacing noise
    lines_seen: set[int] = set()
    misses = 0
    for i in range(streams):
        body = body_for("/api/generate", f"Stream {nonce}-{i}: describe a caching proxy.")
        arrivals: dict[str, list[int]] = {}
        legs = [("direct", direct), ("proxy", proxy)]
        for name, conn in legs if i % 2 == 0 else legs[::-1]:
            _, pieces = conn.exchange(raw_request(conn.url, "/api/generate", body), time.time_ns)
            head, _, lines = parse(pieces)
            check_status(head, f"{name} stream")
            misses += name == "proxy" and b"\r\nx-cache: miss" in head
            arrivals[name] = [t for t, _ in lines]
            transit[name] += [(t - created_ns(line)) / 1000 for t, line in lines]
            lines_seen.add(len(lines))
        d, p = arrivals["direct"], arrivals["proxy"]
        drift += [((p[k] - p[0]) - (d[k] - d[0])) / 1000 for k in range(1, min(len(d), len(p)))]
        jitter += [(d[k] - d[k - 1]) / 1000 - CHUNK_DELAY_MS * 1000 for k in range(1, len(d))]
    rows = {name: summary(transit[name]) for name in transit}
    added = {q: rows["proxy"][q] - rows["direct"][q] for q in ("p50", "p90", "p99")}
    return {**rows, "added": added, "drift": summary(drift, (0.01, 0.5, 0.99)),
            "pacing_jitter": summary(jitter, (0.5, 0.99)), "lines_per_stream": sorted(lines_seen), "misses": misses}


def run(requests: int, warmup: int, streams: int, gap_ms: float) -> dict[str, Any]:
    """Start the fake and the proxy, measure both parts, stop everything."""
    pin_self(CLIENT_CPU)
    paths = ["/api/chat", "/api/generate"]
    results: dict[str, Any] = {"revision": revision(), "busy_before": machine_busy(), "requests": requests,
                               "warmup": warmup, "streams": streams, "gap_ms": gap_ms}
    nonce = os.urandom(4).hex()
    with Stack() as stack:
        stack.start_fake()
        stack.start_proxy()
        direct, proxy = Conn(stack.fake_url), Conn(stack.proxy_url)
        results["ttfb"] = measure_ttfb(direct, proxy, stack.proxy_pid, paths, requests, warmup, gap_ms / 1000, nonce)
        post(stack.fake_url, "/_fake/config", json.dumps({"chunk_delay_ms": CHUNK_DELAY_MS,
                                                          "tokens": CHUNK_TOKENS}).encode())
        results["chunks"] = measure_chunks(direct, proxy, streams, nonce)
        with urllib.request.urlopen(f"{stack.fake_url}/_fake/calls", timeout=10) as answer:
            results["upstream_calls"] = json.load(answer)["by_path"]
        results["upstream_expected"] = {"/api/chat": 2 * (warmup + requests),
                                        "/api/generate": 2 * (warmup + requests + streams)}
    ttfb, chunks = results["ttfb"], results["chunks"]
    results["ratios"] = {**{f"added_ttfb_p50_over_target{p.replace('/', '_')}": ttfb[p]["added"]["p50"] / TARGET_TTFB_US
                            for p in paths},
                         "added_chunk_p50_over_target": chunks["added"]["p50"] / TARGET_CHUNK_US,
                         "added_chunk_p99_over_target": chunks["added"]["p99"] / TARGET_CHUNK_US}
    return results


def print_report(r: dict[str, Any]) -> None:
    """The human-readable report (microseconds)."""
    print(f"miss overhead at {r['revision']}: {r['requests']} unique-prompt requests per route after {r['warmup']} "
          f"warm-up, each sent to the fake Ollama directly and through the proxy, alternating, {r['gap_ms']:g} ms "
          "apart; servers on core 0, client on core 1")
    print(busy_note(r["busy_before"]))
    all_q = ("p50", "p90", "p99", "max", "mean")

    def table(title: str, rows: dict[str, dict[str, float]], qs: tuple[str, ...] = all_q) -> None:
        print(f"  {title:<34}" + "".join(f"{q:>9}" for q in qs))
        for label, row in rows.items():
            print(f"    {label:<32}" + "".join(f"{row[q]:9.1f}" for q in qs if q in row))

    for path, t in r["ttfb"].items():
        print(f"{path} ({'non-streamed' if path == '/api/chat' else 'streamed'}): X-Cache MISS on {t['misses']}/"
              f"{t['proxy']['n']} proxy answers; proxy CPU {t['proxy_cpu_us_per_miss']:.0f} us per miss")
        table("time to first body byte (us)", {"direct": t["direct"], "proxy": t["proxy"],
                                                "added (proxy - direct)": t["added"], "paired, per request": t["paired"]})
    c = r["chunks"]
    print(f"streamed chunks: {r['streams']} /api/generate streams each way, {c['lines_per_stream']} NDJSON lines "
          f"{CHUNK_DELAY_MS} ms apart; X-Cache MISS on {c['misses']}/{r['streams']}")
    table("transit, created_at -> client (us)", {"direct": c["direct"], "proxy": c["proxy"],
                                                  "added (proxy - direct)": c["added"]})
    table("position drift (us)", {"(tp[i]-tp[0]) - (td[i]-td[0])": c["drift"]}, ("p1", "p50", "p99", "max", "mean"))
    print(f"  the fake's own pacing jitter (direct inter-arrival - {CHUNK_DELAY_MS} ms): p50 "
          f"{c['pacing_jitter']['p50']:.1f} us, p99 {c['pacing_jitter']['p99']:.1f} us; drift cannot see a constant "
          "delay per chunk, transit can")
    calls, expected = r["upstream_calls"], r["upstream_expected"]
    print("upstream calls: " + ", ".join(f"{p} {calls.get(p, 0)} (expected {n})" for p, n in expected.items()))
    verdicts = [(f"added TTFB p50 {p}", t["added"]["p50"], TARGET_TTFB_US) for p, t in r["ttfb"].items()]
    verdicts += [(f"added delay per chunk {q}", c["added"][q], TARGET_CHUNK_US) for q in ("p50", "p99")]
    for label, value, target in verdicts:
        print(f"{label}: {value:.1f} us vs target {target:.0f} us: {value / target:.2f}x "
              f"({'meets' if value <= target else 'MISSES'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per route (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first, per route (default 20)")
    parser.add_argument("--streams", type=int, default=10, help="paced streams each way, ~1 s each (default 10)")
    parser.add_argument("--gap-ms", type=float, default=5.0, help="pause after each request (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a report")
    args = parser.parse_args(argv)
    try:
        results = run(max(1, args.requests), max(0, args.warmup), max(1, args.streams), max(0.0, args.gap_ms))
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
