"""Hit latency with the Redis store beside the disk store: same run, same answer bytes.

Starts the fake Ollama, a ``redis-server`` of its own (no persistence) and four proxies in front of the
fake: the disk store and the Redis store, each with the memory tier on (``cache.memory_limit`` at its
default, as users run it) and off (``0``: every hit is read from the store, which shows the store
itself). The disk proxies share one directory; one of them answers the ~1 KB non-streamed
``/api/chat`` request (a MISS) and the bench copies that entry to Redis, so all four serve the very same
bytes (checked); then N hits are timed on one keep-alive connection
per proxy, the proxies taking turns in rounds (as ``bench/hit_latency.py`` does). Servers (proxies and
Redis) run pinned to core 0, this client to core 1. Never fails on time.

    .venv/bin/python bench/redis_hit.py [--requests 5000] [--warmup 500] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import (
    CHAT_BODY,
    CLIENT_CPU,
    PYTHON,
    SERVER_CPU,
    Stack,
    busy_note,
    free_port,
    latency_counts,
    latency_options,
    machine_busy,
    pin_self,
    post,
    print_latency_rows,
    report,
    revision,
    taskset,
)
from hit_latency import measure

from core.cache.entry import Entry
from core.cache.storage.diskstore import DiskStore
from core.cache.storage.redisstore import RedisStore

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
ROWS = {  # name: (store, memory tier on)
    "disk, memory tier on": ("disk", True),
    "redis, memory tier on": ("redis", True),
    "disk, memory tier off (the store)": ("disk", False),
    "redis, memory tier off (the store)": ("redis", False),
}


def start_redis(stack: Stack) -> str:
    """A redis-server on a free port in the stack's directory, stopped with the stack; its URL."""
    port = free_port()
    cmd = [
        *taskset(SERVER_CPU),
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(stack.dir),
        "--maxmemory",
        "256mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    stack.procs.append((proc, signal.SIGTERM))
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            client.close()
            return f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError("redis-server exited") from None
            time.sleep(0.05)
    raise RuntimeError("redis-server did not answer")


def start_proxy(stack: Stack, name: str, store: str, memory: bool) -> str:
    """One proxy in front of the fake with its own config dir, on ``store`` (the disk ones share a directory);
    its URL."""
    config = stack.dir / f"config-{name}"
    config.mkdir()
    cmd = [
        *taskset(SERVER_CPU),
        PYTHON,
        "-m",
        "core",
        "serve",
        "--port",
        "0",
        "--upstream",
        stack.fake_url,
        "--cache-dir",
        str(stack.dir / "cache"),
        "--store",
        store,
    ]
    env = {"OLLACACHE_CONFIG_DIR": str(config), "OLLACACHE_MANAGE_OLLAMA": "never"}
    if not memory:
        env["OLLACACHE_MEMORY_LIMIT"] = "0"
    _, url = stack._start(f"proxy-{name}", cmd, env=env)  # noqa: SLF001 - the stack's own starter
    return url


def same_answer_everywhere(stack: Stack, first: str, redis_url: str) -> Entry:
    """Answer the bench's request once (a miss on ``first``, a disk proxy) and copy that entry from the disk
    store to Redis, so that every proxy serves the very same bytes."""
    status, headers, _ = post(first, "/api/chat", CHAT_BODY)
    if status != 200 or headers.get("x-cache") != "MISS":
        raise RuntimeError(f"priming {first}: expected 200 MISS, got {status} {headers.get('x-cache')}")
    disk = DiskStore(stack.dir / "cache", 2**30)
    try:
        for _ in range(200):  # the proxy writes it to disk within a few ms
            if (entry := disk.get(headers["x-cache-key"])) is not None:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the answer never reached the disk store")
    finally:
        disk.close()
    shared = RedisStore(redis_url)
    try:
        shared.put(entry)
    finally:
        shared.close()
    return entry


def hit(url: str) -> bytes:
    """The bench's request on ``url``, which must be a HIT; the answer's bytes."""
    status, headers, answer = post(url, "/api/chat", CHAT_BODY)
    if status != 200 or headers.get("x-cache") != "HIT":
        raise RuntimeError(f"{url}: expected 200 HIT, got {status} {headers.get('x-cache')}")
    return answer


def run(requests: int, warmup: int, rounds: int) -> dict[str, Any]:
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
        redis_url = start_redis(stack)
        urls = {
            name: start_proxy(stack, f"p{index}", redis_url if store == "redis" else "disk", memory)
            for index, (name, (store, memory)) in enumerate(ROWS.items())
        }
        same_answer_everywhere(stack, urls["disk, memory tier on"], redis_url)
        answers = {name: hit(url) for name, url in urls.items()}
        if len(set(answers.values())) != 1:
            raise RuntimeError("the proxies answered different bytes: " + str({k: len(v) for k, v in answers.items()}))
        results["answer_bytes"] = len(next(iter(answers.values())))
        rows = measure({name: (url, "/api/chat", CHAT_BODY) for name, url in urls.items()}, requests, warmup, rounds)
        results["still_hit_after"] = all(
            post(url, "/api/chat", CHAT_BODY)[1].get("x-cache") == "HIT" for url in urls.values()
        )
    results["rows"] = rows
    results["ratios"] = {
        "redis_p50_over_disk_p50_memory_on": rows["redis, memory tier on"]["p50"] / rows["disk, memory tier on"]["p50"],
        "redis_p50_over_disk_p50_memory_off": (
            rows["redis, memory tier off (the store)"]["p50"] / rows["disk, memory tier off (the store)"]["p50"]
        ),
    }
    return results


def print_table(results: dict[str, Any]) -> None:
    rows: dict[str, dict[str, float]] = results["rows"]
    print(
        f"hit latency by store at {results['revision']}: one keep-alive connection per proxy, "
        f"{results['requests']} requests each after {results['warmup']} warm-up, interleaved in "
        f"{results['rounds']} rounds; proxies and Redis on core 0, client on core 1; "
        f"the same {results['answer_bytes']} B answer from each"
    )
    print(busy_note(results["busy_before"]))
    print_latency_rows(rows, "proxy")
    ratios = results["ratios"]
    print(
        f"redis p50 / disk p50: {ratios['redis_p50_over_disk_p50_memory_on']:.2f}x with the memory tier, "
        f"{ratios['redis_p50_over_disk_p50_memory_off']:.2f}x without"
    )
    if not results["still_hit_after"]:
        print("warning: a proxy no longer answered HIT after the run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    latency_options(parser, "proxy", "proxies", requests=5000, warmup=500, rounds=5)
    args = parser.parse_args(argv)
    return report(lambda: run(*latency_counts(args)), args.json, print_table)


if __name__ == "__main__":
    sys.exit(main())
