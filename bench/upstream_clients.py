"""Upstream HTTP clients compared: what one request costs each client the proxy could use to reach Ollama.

The raw-socket upstream of ``bench/raw_upstream.py`` (a child process on core 0, TCP_NODELAY set), as in
``bench/miss_overhead.py``, answers a ~1 KB non-streamed ``/api/chat`` and a ``--chunks``-line NDJSON
``/api/generate``. In this process (core 1, on uvloop as the proxy runs), each client sends N requests per
route over one kept-alive connection, the clients taking turns in ``--rounds`` rounds so a slow minute of
the machine hits them alike:

- ``httpx``: ``httpx.AsyncClient`` streaming the answer, as the proxy has used it;
- ``httpcore``: ``httpcore.AsyncConnectionPool`` used directly (httpx's own transport, without httpx);
- ``aiohttp``: ``aiohttp.ClientSession`` reading the raw body (``content.iter_any``), with its C parser.

Figures (p50 of the wall time, and CPU per request from ``time.process_time``, this process only): time to
the answer's first body bytes and to its end. The ``raw`` row is a hand-written asyncio stream exchange,
the floor a client library can approach. Ratios are against aiohttp in the same run; never fails on time.

    .venv/bin/python bench/upstream_clients.py [--requests 2000] [--rounds 3] [--chunks 32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpcore
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENT_CPU, Stack, busy_note, machine_busy, pin_self, revision
from raw_client import body_for
from raw_upstream import LENGTH_RE, start_upstream

Exchange = Callable[[str, bytes], Awaitable[tuple[float, float]]]  # (path, body) -> (s to first bytes, s to end)
CLIENTS = ("httpx", "httpcore", "aiohttp", "raw")


async def make_clients(url: str) -> tuple[dict[str, Exchange], Callable[[], Awaitable[None]]]:
    """Each client's exchange, and a function closing them all."""
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    hx = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=None, write=None, pool=None),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
    )
    core = httpcore.AsyncConnectionPool(max_keepalive_connections=32)
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        auto_decompress=False,
        connector=aiohttp.TCPConnector(limit=0),
    )
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def with_httpx(path: str, body: bytes) -> tuple[float, float]:
        started = time.perf_counter()
        response = await hx.send(hx.build_request("POST", url + path, headers=headers, content=body), stream=True)
        first = 0.0
        async for _ in response.aiter_raw():
            first = first or time.perf_counter()
        await response.aclose()
        return first - started, time.perf_counter() - started

    async def with_httpcore(path: str, body: bytes) -> tuple[float, float]:
        started = time.perf_counter()
        head = [
            (b"host", f"{host}:{port}".encode()),
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]
        async with core.stream("POST", url + path, headers=head, content=body) as response:
            first = 0.0
            async for _ in response.aiter_stream():
                first = first or time.perf_counter()
        return first - started, time.perf_counter() - started

    async def with_aiohttp(path: str, body: bytes) -> tuple[float, float]:
        started = time.perf_counter()
        async with session.post(url + path, data=body, headers=headers) as response:
            first = 0.0
            async for _ in response.content.iter_any():
                first = first or time.perf_counter()
        return first - started, time.perf_counter() - started

    async def with_raw(path: str, body: bytes) -> tuple[float, float]:
        started = time.perf_counter()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        first = 0.0
        if found := LENGTH_RE.search(head.lower()):
            await reader.readexactly(int(found[1]))
            first = time.perf_counter()
        else:
            while True:  # the chunked body, piece by piece as it comes
                size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                await reader.readexactly(size + 2)
                first = first or time.perf_counter()
                if size == 0:
                    break
        return first - started, time.perf_counter() - started

    async def close() -> None:
        await hx.aclose()
        await core.aclose()
        await session.close()
        writer.close()

    return {"httpx": with_httpx, "httpcore": with_httpcore, "aiohttp": with_aiohttp, "raw": with_raw}, close


async def measure(url: str, requests: int, rounds: int) -> dict[str, Any]:
    """Every client, every route, in interleaved rounds; seconds turned into microseconds."""
    clients, close = await make_clients(url)
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        path: {name: {"first": [], "last": [], "cpu": []} for name in clients}
        for path in ("/api/chat", "/api/generate")
    }
    try:
        for path in samples:
            body = body_for(path, "Which client is leanest?")
            for exchange in clients.values():
                for _ in range(50):  # warm-up: connections open, code paths hot
                    await exchange(path, body)
            for _ in range(rounds):
                for name, exchange in clients.items():
                    row = samples[path][name]
                    cpu_before = time.process_time()
                    for _ in range(requests // rounds):
                        first, last = await exchange(path, body)
                        row["first"].append(first * 1e6)
                        row["last"].append(last * 1e6)
                    row["cpu"].append((time.process_time() - cpu_before) * 1e6 / (requests // rounds))
    finally:
        await close()
    return {
        path: {
            name: {
                "first_p50": statistics.median(row["first"]),
                "last_p50": statistics.median(row["last"]),
                "cpu_per_request": statistics.median(row["cpu"]),
            }
            for name, row in by_client.items()
        }
        for path, by_client in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per client and route")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--chunks", type=int, default=32, help="NDJSON lines of the streamed answer (default 32)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a report")
    args = parser.parse_args(argv)
    pin_self(CLIENT_CPU)
    results: dict[str, Any] = {
        "revision": revision(),
        "busy_before": machine_busy(),
        "requests": args.requests,
        "rounds": args.rounds,
        "chunks": args.chunks,
    }
    with Stack() as stack:
        url = start_upstream(stack, True, max(2, args.chunks), 0.0)
        results["routes"] = uvloop.run(measure(url, max(args.rounds, args.requests), max(1, args.rounds)))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"upstream clients at {results['revision']}: {args.requests} requests per client and route in "
        f"{args.rounds} interleaved rounds, one kept-alive connection each; upstream on core 0, clients on core 1"
    )
    print(busy_note(results["busy_before"]))
    for path, rows in results["routes"].items():
        what = "non-streamed, ~1 KB" if path == "/api/chat" else f"streamed, {args.chunks} chunks"
        print(f"{path} ({what}), us:{'first bytes p50':>24}{'end p50':>10}{'CPU/request':>13}{'CPU vs aiohttp':>16}")
        for name, row in rows.items():
            print(
                f"    {name:<34}{row['first_p50']:10.1f}{row['last_p50']:10.1f}{row['cpu_per_request']:13.1f}"
                f"{row['cpu_per_request'] / rows['aiohttp']['cpu_per_request']:15.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
