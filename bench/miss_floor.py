"""The floor under a miss: what uvicorn and aiohttp alone cost when relaying one answer, beside the proxy.

The raw-socket upstream of ``bench/raw_upstream.py`` answers a ~1 KB non-streamed ``/api/chat``.
Three targets are timed back to back over one keep-alive connection each, in the same run: the upstream
directly; a bare relay (uvicorn with uvloop and httptools, aiohttp's client, no cache, no keying, no
store: the least this stack can do per request); and the proxy, every request a distinct MISS that is
recorded and stored. Printed per target: time to the first body byte (p50) and CPU per request of the
serving process (user + system, all threads, psutil), so what the cache itself adds reads as the
difference from the bare relay.

    .venv/bin/python bench/miss_floor.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, Stack, busy_note, machine_busy, raw_request, revision  # noqa: E402
from raw_client import Conn, body_for  # noqa: E402
from raw_upstream import start_upstream  # noqa: E402

RELAY = """
import os, socket, aiohttp, uvicorn
UP, session = os.environ["UP"], None
async def app(scope, receive, send):
    global session
    if scope["type"] != "http":
        return
    session = session or aiohttp.ClientSession()
    body = (await receive())["body"]
    async with session.post(UP + scope["path"], data=body, headers={"content-type": "application/json"}) as r:
        await send({"type": "http.response.start", "status": r.status,
                    "headers": [(b"content-type", r.headers["content-type"].encode()), (b"x-cache", b"MISS")]})
        async for chunk in r.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
listener = socket.socket(); listener.bind(("127.0.0.1", 0))
print(f"http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning")).run([listener])
"""


def wait_listening(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    for _ in range(200):
        try:
            socket.create_connection((host, int(port))).close()
            return
        except OSError:
            time.sleep(0.05)  # start-up, not a measurement
    raise RuntimeError(f"{url} does not answer")


def timed(url: str, pid: int | None, requests: int, label: str) -> tuple[float, float | None]:
    """(p50 microseconds to the first byte, CPU microseconds per request of ``pid``)."""
    conn = Conn(url)
    process = psutil.Process(pid) if pid else None
    for i in range(50):
        conn.exchange(raw_request(url, "/api/chat", body_for("/api/chat", f"warm {label} {i}")))
    before = process.cpu_times() if process else None
    firsts = [
        conn.exchange(raw_request(url, "/api/chat", body_for("/api/chat", f"{label} {i} {os.getpid()}")))[1]
        for i in range(requests)
    ]
    conn.close()
    if process is None or before is None:
        return statistics.median(firsts), None
    after = process.cpu_times()
    cpu = (after.user - before.user + after.system - before.system) * 1e6 / requests
    return statistics.median(firsts), cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per target")
    args = parser.parse_args(argv)
    busy = machine_busy()
    with Stack() as stack:
        upstream = start_upstream(stack, True, 32, 0)
        relay, relay_url = stack._start("relay", [PYTHON, "-c", RELAY], env={"UP": upstream})  # noqa: SLF001
        stack.start_proxy()
        wait_listening(relay_url)
        rows = [
            ("upstream directly", *timed(upstream, None, args.requests, "direct")),
            ("bare relay (uvicorn + aiohttp)", *timed(relay_url, relay.pid, args.requests, "relay")),
            ("the proxy (a MISS, stored)", *timed(stack.proxy_url, stack.proxy_pid, args.requests, "proxy")),
        ]
    print(
        f"miss floor at {revision()}: {args.requests} distinct non-streamed requests per target, back to back; "
        f"{busy_note(busy)}"
    )
    direct = rows[0][1]
    print(f"{'target':<34}{'first byte':>12}{'added':>10}{'CPU/request':>13}")
    for name, first, cpu in rows:
        cpu_text = f"{cpu:>10.0f} us" if cpu is not None else f"{'–':>13}"
        print(f"{name:<34}{first:>9.0f} us{first - direct:>7.0f} us{cpu_text}")
    (_, relay_first, relay_cpu), (_, proxy_first, proxy_cpu) = rows[1], rows[2]
    assert relay_cpu is not None and proxy_cpu is not None
    print(
        f"the cache's own part: {proxy_first - relay_first:.0f} us of the first byte, "
        f"{proxy_cpu - relay_cpu:.0f} us of CPU per miss"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
