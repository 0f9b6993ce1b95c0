"""Coalescing: N identical requests sent at once make one upstream call.

The fake Ollama generates at a model's pace (``--chunk-ms`` per token, ``--tokens`` tokens), so one
answer takes a noticeable time. For each stream mode the script sends one request alone (a miss: the
reference), then ``--clients`` identical requests of a new prompt at the same moment, over their own
connections, and prints how many calls reached the fake, how the answers were marked (``X-Cache``), and
the time the last client waited against the request alone, measured in the same run.

    .venv/bin/python bench/coalesce.py [--clients 100] [--tokens 50] [--chunk-ms 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENT_CPU, Stack, busy_note, machine_busy, pin_self, post, revision  # noqa: E402


def body_for(prompt: str, streamed: bool) -> bytes:
    return json.dumps(
        {
            "model": "llama3.2",
            "stream": streamed,
            "options": {"temperature": 0},
            "messages": [{"role": "user", "content": prompt}],
        }
    ).encode()


async def one(url: str, body: bytes, ready: list[int], start: asyncio.Event) -> tuple[float, str]:
    """Connect, wait for the common start, send, read to the end: (seconds from the start, X-Cache)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    ready[0] += 1
    request = (
        f"POST /api/chat HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    await start.wait()
    began = time.perf_counter()
    writer.write(request)
    answer = await reader.read()  # Connection: close: the answer ends with the connection
    waited = time.perf_counter() - began
    writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    if not head.startswith("http/1.1 200"):
        raise RuntimeError(f"answer: {head.splitlines()[0] if head else 'nothing'}")
    cache = next(
        (line.split(":", 1)[1].strip().upper() for line in head.splitlines() if line.startswith("x-cache:")), "?"
    )
    return waited, cache


async def burst(url: str, body: bytes, clients: int) -> list[tuple[float, str]]:
    start, ready = asyncio.Event(), [0]
    tasks = [asyncio.ensure_future(one(url, body, ready, start)) for _ in range(clients)]
    while ready[0] < clients:  # every connection is open before the common start
        await asyncio.sleep(0.01)
    start.set()
    return await asyncio.gather(*tasks)


def fake_calls(fake_url: str) -> int:
    """Calls the fake has had on /api/chat."""
    parts = urlsplit(fake_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", "/_fake/calls")
        return int(json.loads(conn.getresponse().read())["by_path"].get("/api/chat", 0))
    finally:
        conn.close()


def run(clients: int, tokens: int, chunk_ms: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Stack() as stack:
        fake = stack.start_fake(cpu=None, tokens=tokens)
        post(fake, "/_fake/config", json.dumps({"chunk_delay_ms": chunk_ms}).encode())
        proxy = stack.start_proxy(cpu=None)
        pin_self(CLIENT_CPU)
        for streamed in (False, True):
            mode = "streamed" if streamed else "not streamed"
            alone, last, calls, marks = [], [], [], Counter[str]()
            for round_ in range(rounds):
                single = asyncio.run(burst(proxy, body_for(f"alone {mode} {round_}", streamed), 1))
                alone.append(single[0][0])
                before = fake_calls(fake)
                answers = asyncio.run(burst(proxy, body_for(f"together {mode} {round_}", streamed), clients))
                calls.append(fake_calls(fake) - before)
                last.append(max(waited for waited, _ in answers))
                marks.update(cache for _, cache in answers)
            results[mode] = {
                "alone_s": statistics.median(alone),
                "last_s": statistics.median(last),
                "calls": calls,
                "marks": dict(marks),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="identical requests sent at once")
    parser.add_argument("--tokens", type=int, default=50, help="tokens in each answer")
    parser.add_argument("--chunk-ms", type=int, default=10, help="milliseconds the fake takes per token")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per mode (medians are printed)")
    args = parser.parse_args(argv)
    busy = machine_busy()
    results = run(args.clients, args.tokens, args.chunk_ms, args.rounds)
    print(
        f"coalescing, {args.clients} identical requests at once; answers of {args.tokens} tokens at "
        f"{args.chunk_ms} ms each; revision {revision()}; {busy_note(busy)}"
    )
    print(f"{'mode':<14}{'upstream calls':>16}{'alone':>10}{'last client':>13}{'ratio':>8}  answers")
    for mode, row in results.items():
        ratio = row["last_s"] / row["alone_s"]
        marks = ", ".join(f"{count} {mark}" for mark, count in sorted(row["marks"].items()))
        print(
            f"{mode:<14}{'/'.join(map(str, row['calls'])):>16}{row['alone_s'] * 1000:>8.0f} ms"
            f"{row['last_s'] * 1000:>10.0f} ms{ratio:>7.2f}x  {marks}"
        )
    exact = all(calls == 1 for row in results.values() for calls in row["calls"])
    print("every burst made exactly one upstream call" if exact else "some burst made more than one upstream call")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
