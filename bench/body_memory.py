"""Memory of keying a big request body: a 50 MB ``/api/chat`` with an image in base64.

Does what the proxy does with a body on a cached route, under ``tracemalloc``: read it from ASGI
messages of 64 KiB (`core.http.relay.read_body`), parse it (``json.loads``) and key it
(`core.cache.request.keys.cache_key`). Prints the peak of the memory allocated on the way, as a multiple of the
body's size, for today's code and for the way it was done before (the chunks joined at the end, the
canonical JSON built whole, then encoded, then hashed), next to a reference measured in the same run:
a bare ``json.loads`` of the same body, the floor of any keying that parses with the standard library.
Each row counts only what its step allocates: the body the "key only" rows hash is parsed beforehand,
and the body every row reads from is made before measuring. The two ways must give the same key. Never
fails on memory or time.

    .venv/bin/python bench/body_memory.py [--mb 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.cache.request.keys import cache_key, canonical_request  # noqa: E402 - bench scripts run as plain files
from core.http.relay import read_body  # noqa: E402

CHUNK = 64 * 1024  # bytes per ASGI message
ROUTE = "/api/chat"
CONTEXT = {"credential": hashlib.sha256(b"Bearer key").hexdigest(), "OLLAMA_CONTEXT_LENGTH": "8192"}
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def chat_body(megabytes: int) -> bytes:
    """An /api/chat request whose image (random bytes, in base64) makes it ``megabytes`` MB long."""
    image = base64.b64encode(hashlib.shake_256(b"ollacache").digest(megabytes * 10**6 * 3 // 4)).decode()
    return json.dumps(
        {
            "model": "llava",
            "stream": False,
            "options": {"temperature": 0},
            "messages": [{"role": "user", "content": "What is in this picture?", "images": [image]}],
        }
    ).encode()


def receiver(source: bytes) -> Receive:
    """ASGI messages of `CHUNK` bytes of ``source``, each made when asked for (as a server makes them)."""
    view = memoryview(source)
    offset = 0

    async def receive() -> MutableMapping[str, Any]:
        nonlocal offset
        part = bytes(view[offset : offset + CHUNK])
        offset += CHUNK
        return {"type": "http.request", "body": part, "more_body": offset < len(source)}

    return receive


async def read_body_before(receive: Receive) -> bytes:
    """How `read_body` read a body in many messages before: every chunk kept, then joined."""
    message = await receive()
    parts = [message.get("body", b"")]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


def cache_key_before(path: str, body: Any, context: dict[str, str]) -> str:
    """How `cache_key` hashed before: the canonical JSON as one string, then its UTF-8, then SHA-256."""
    form = canonical_request(path, body, context)
    text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def peak(work: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes allocated while ``work`` runs (above what was allocated before), and its result."""
    gc.collect()
    tracemalloc.start()
    result = work()
    top = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return top, result


def best_seconds(*works: Callable[[], Any], rounds: int = 5) -> list[float]:
    """The fastest run of each of ``works``, untraced, in interleaved rounds (the machine's speed drifts)."""
    times: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for work, spent in zip(works, times, strict=False):
            gc.collect()
            started = time.perf_counter()
            work()
            spent.append(time.perf_counter() - started)
    return [min(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the request body in MB (default 50)")
    args = parser.parse_args()
    source = chat_body(args.mb)
    size = len(source)
    loop = asyncio.new_event_loop()  # one loop for every read, as in a server (made before measuring)

    def read_and_key(read: Callable[[Receive], Awaitable[bytes]], key: Callable[..., str]) -> str:
        body = loop.run_until_complete(read(receiver(source)))
        request = json.loads(body)  # as the proxy does, between reading and keying
        return key(ROUTE, request, CONTEXT)

    parsed = json.loads(source)
    figures = {
        "reference: json.loads of the body": peak(lambda: json.loads(source)),
        "read only, before (chunks joined)": peak(lambda: loop.run_until_complete(read_body_before(receiver(source)))),
        "read only, now (one buffer)": peak(lambda: loop.run_until_complete(read_body(receiver(source)))),
        "key only, before (whole canonical JSON)": peak(lambda: cache_key_before(ROUTE, parsed, CONTEXT)),
        "key only, now (hashed in pieces)": peak(lambda: cache_key(ROUTE, parsed, CONTEXT)),
        "read + parse + key, before": peak(lambda: read_and_key(read_body_before, cache_key_before)),
        "read + parse + key, now": peak(lambda: read_and_key(read_body, cache_key)),
    }
    seconds_before, seconds_now = best_seconds(
        lambda: cache_key_before(ROUTE, parsed, CONTEXT), lambda: cache_key(ROUTE, parsed, CONTEXT)
    )
    loop.close()
    keys = {result for label, (_, result) in figures.items() if label.startswith(("key", "read +"))}
    assert len(keys) == 1, f"the two ways disagree on the key: {keys}"

    print(
        f"peak memory allocated for a {size / 1e6:.1f} MB {ROUTE} body (an image in base64),"
        f" as a multiple of its size (tracemalloc; {CHUNK // 1024} KiB ASGI messages)"
    )
    for label, (top, _) in figures.items():
        print(f"  {label:<42} {top / size:5.2f}x  {top / 2**20:7.1f} MiB")
    reference = figures["reference: json.loads of the body"][0]
    before, now = figures["read + parse + key, before"][0], figures["read + parse + key, now"][0]
    print(
        f"  read + parse + key: {before / size:.2f}x before, {now / size:.2f}x now;"
        f" the body itself (1x) plus json.loads's own peak ({reference / size:.2f}x) is {1 + reference / size:.2f}x"
    )
    print(
        f"  time to key it (untraced, best of 5 interleaved rounds): {seconds_before * 1000:.0f} ms before,"
        f" {seconds_now * 1000:.0f} ms now"
    )
    print(f"  same key both ways: {keys.pop()}")


if __name__ == "__main__":
    main()
