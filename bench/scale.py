"""A million entries in bounded memory: hit latency and the proxy's RSS against the store's size.

Seeds a store directly (a :class:`core.cache.storage.diskstore.DiskStore`, 10,000 entries per transaction: through
the proxy it fills at only ~200 misses/s) with realistic entries: ~1 KB non-streamed ``/api/chat`` answers
under the keys the proxy computes (:class:`core.cache.request.requests.RequestKeys`) for the bodies this script
sends. Then, for a store of ``--small`` and one of ``--entries`` entries, it runs a real proxy process
(``python -m core serve``, upstream a closed port: every request is a hit) and times ``--requests`` hits
over one keep-alive raw-socket connection, each on a key drawn at random from the whole store (so at a
million entries nearly every hit is read from SQLite, at 1,000 most come from the memory tier, as a user
would see them). On the large store it then sends 100,000 hits over 50,000 distinct keys (each twice,
shuffled) and reads the proxy's RSS (psutil) against the 80 MB target, with the disk size per entry.

    .venv/bin/python bench/scale.py [--entries 1000000] [--small 1000] [--requests 5000]
                                    [--hits 100000] [--distinct 50000] [--keep DIR]

``--keep DIR`` keeps the seeded stores in DIR and reuses them on the next run (seeding a million takes
minutes). Never fails on time; the figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import (
    CLIENT_CPU,
    PYTHON,
    REPO,
    URL_RE,
    busy_note,
    free_port,
    machine_busy,
    pin_self,
    post,
    raw_request,
    revision,
)
from hit_latency import _read_answer, summary

from core.cache.entry import Entry
from core.cache.request.keys import ROUTES
from core.cache.request.requests import RequestKeys
from core.cache.storage.diskstore import DiskStore

TARGET_RSS = 80 * 2**20
TARGET_RATIO = 1.5
BATCH = 10_000  # entries per seeding transaction
CACHE_SIZE = 64 * 2**30  # the proxy's cache.size_limit: the bench must not evict what it seeded
ROUTE = ROUTES["/api/chat"]
TEXT = (
    "The cache answers this request from disk instead of asking the model again, which saves seconds "
    "of work on every repeated call. "
) * 12


def body(index: int) -> bytes:
    """The request body of entry ``index`` (what the client sends, byte for byte)."""
    return json.dumps(
        {
            "model": "llama3.2",
            "stream": False,
            "options": {"temperature": 0},
            "messages": [
                {"role": "user", "content": f"Question {index}: why is a cache hit cheaper than a model call?"}
            ],
        },
        separators=(",", ":"),
    ).encode()


def answer(index: int, created: str) -> bytes:
    """A ~1 KB non-streamed answer as Ollama writes it."""
    at = index % 97  # each answer's text its own
    content = f"Answer {index}. {TEXT[at:]}{TEXT[:at]}"
    return json.dumps(
        {
            "model": "llama3.2",
            "created_at": created,
            "message": {"role": "assistant", "content": content[:760]},
            "done_reason": "stop",
            "done": True,
            "total_duration": 2_000_000_000 + index,
            "load_duration": 30_000_000,
            "prompt_eval_count": 31,
            "prompt_eval_duration": 150_000_000,
            "eval_count": 110,
            "eval_duration": 1_800_000_000,
        },
        separators=(",", ":"),
    ).encode()


def seed(directory: Path, count: int) -> None:
    """Fill ``directory`` with entries 0 .. count-1 (adding only those missing after an earlier run)."""
    keys = RequestKeys()
    store = DiskStore(directory, CACHE_SIZE)
    try:
        have = store.count()
        if have >= count:
            return
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        now = time.time()
        started = time.monotonic()
        for first in range(have, count, BATCH):
            batch = []
            for index in range(first, min(count, first + BATCH)):
                facts = keys.facts(ROUTE, body(index), None)
                assert facts is not None
                batch.append(
                    Entry(
                        key=facts.key,
                        route=ROUTE.path,
                        model=facts.model,
                        streamed=False,
                        content_type="application/json; charset=utf-8",
                        chunks=[answer(index, created)],
                        offsets_s=[2.0],
                        created=now,
                        duration_s=2.0,
                        prompt_tokens=31,
                        completion_tokens=110,
                    )
                )
            store.put_many(batch)
            keys.forget()
            done = min(count, first + BATCH)
            rate = (done - have) / max(1e-9, time.monotonic() - started)
            print(f"\r  seeding {directory.name}: {done:,} / {count:,} ({rate:,.0f}/s)", end="", flush=True)
        print()
    finally:
        store.close()


def disk_bytes(directory: Path) -> int:
    """Bytes the store takes on disk (every file under it, by blocks allocated)."""
    return sum(path.stat().st_blocks * 512 for path in directory.rglob("*") if path.is_file())


class Proxy:
    """``python -m core serve`` on a free port over ``cache_dir``, its upstream a closed port."""

    def __init__(self, cache_dir: Path, work: Path) -> None:
        config = work / f"config-{cache_dir.name}"
        config.mkdir(exist_ok=True)
        self.log = open(work / f"proxy-{cache_dir.name}.err", "wb")  # noqa: SIM115 - for the child's lifetime
        cmd = [
            PYTHON,
            "-m",
            "core",
            "serve",
            "--port",
            "0",
            "--upstream",
            f"http://127.0.0.1:{free_port()}",
            "--manage-ollama",
            "never",
            "--cache-dir",
            str(cache_dir),
            "--cache-size",
            str(CACHE_SIZE),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "OLLACACHE_CONFIG_DIR": str(config)},
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = URL_RE.search(line)
            if found:
                self.url = found.group().decode()
                break
        else:
            raise RuntimeError(f"the proxy did not start: {(work / f'proxy-{cache_dir.name}.err').read_text()}")
        self.process = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()


class Client:
    """One keep-alive raw-socket connection sending pre-built requests for entry indexes."""

    def __init__(self, url: str) -> None:
        host, port = url.rsplit("/", 1)[-1].split(":")
        self.url = url
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def hit(self, index: int) -> float:
        """Send entry ``index``'s request; its latency in microseconds (raises unless it is a HIT)."""
        request = raw_request(self.url, "/api/chat", body(index))
        started = time.perf_counter_ns()
        self.sock.sendall(request)
        data = _read_answer(self.sock)
        took = (time.perf_counter_ns() - started) / 1000.0
        if data < 1000:
            raise RuntimeError(f"entry {index}: a {data}-byte answer, not a hit")
        return took

    def close(self) -> None:
        self.sock.close()


def latency(proxy: Proxy, entries: int, requests: int, rng: random.Random) -> dict[str, float]:
    """p50/p99 of ``requests`` hits on keys drawn at random from ``entries`` (after 500 untimed)."""
    status, headers, _ = post(proxy.url, "/api/chat", body(0))
    if status != 200 or headers.get("x-cache") != "HIT":
        raise RuntimeError(f"entry 0 answered {status} {headers.get('x-cache')}, not a HIT")
    client = Client(proxy.url)
    try:
        for _ in range(500):
            client.hit(rng.randrange(entries))
        samples = [client.hit(rng.randrange(entries)) for _ in range(requests)]
    finally:
        client.close()
    return summary(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries of the large store")
    parser.add_argument("--small", type=int, default=1_000, help="entries of the small store")
    parser.add_argument("--requests", type=int, default=5_000, help="timed hits per store")
    parser.add_argument("--hits", type=int, default=100_000, help="hits sent before reading the RSS")
    parser.add_argument("--distinct", type=int, default=50_000, help="distinct keys those hits go to")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the seeded stores in this directory")
    args = parser.parse_args(argv)
    distinct = min(args.distinct, args.entries)
    pin_self(CLIENT_CPU)
    rng = random.Random(14)
    work = Path(tempfile.mkdtemp(prefix="ollacache-scale-"))
    stores = args.keep or work
    stores.mkdir(parents=True, exist_ok=True)
    try:
        small, large = stores / f"store-{args.small}", stores / f"store-{args.entries}"
        for directory, count in ((small, args.small), (large, args.entries)):
            seed(directory, count)
        busy = machine_busy()
        print(
            f"a store of {args.small:,} and one of {args.entries:,} entries at {revision()}; "
            f"{args.requests:,} timed hits each on random keys, one keep-alive connection"
        )
        print(busy_note(busy))
        rows = {}
        for directory, count in ((small, args.small), (large, args.entries)):
            proxy = Proxy(directory, work)
            try:
                rows[count] = latency(proxy, count, args.requests, rng)
                if count == args.entries:
                    started_rss = proxy.rss()
                    order = [index for index in rng.sample(range(count), distinct) for _ in (0, 1)]
                    rng.shuffle(order)
                    client = Client(proxy.url)
                    began = time.monotonic()
                    try:
                        for n in range(args.hits):
                            client.hit(order[n % len(order)])
                    finally:
                        client.close()
                    took = time.monotonic() - began
                    rss = proxy.rss()
            finally:
                proxy.close()
        for count, row in rows.items():
            print(f"  {count:>9,} entries: hit p50 {row['p50']:7.1f} us  p99 {row['p99']:7.1f} us")
        ratio = rows[args.entries]["p50"] / rows[args.small]["p50"]
        print(
            f"  p50 at {args.entries:,} / at {args.small:,}: {ratio:.2f}x (target <= {TARGET_RATIO}x: "
            f"{'meets' if ratio <= TARGET_RATIO else 'MISSES'})"
        )
        print(
            f"proxy RSS after {args.hits:,} hits over {distinct:,} distinct keys of {args.entries:,} entries "
            f"({args.hits / took:,.0f} hits/s): {rss / 2**20:.1f} MiB (before them {started_rss / 2**20:.1f} MiB;"
            f" target <= {TARGET_RSS / 2**20:.0f} MiB: {rss / TARGET_RSS:.2f}x, "
            f"{'meets' if rss <= TARGET_RSS else 'MISSES'})"
        )
        size = disk_bytes(large)
        print(
            f"disk: {size / 2**20:,.0f} MiB for {args.entries:,} entries, {size / args.entries:,.0f} B per entry "
            f"(answer {len(answer(0, 'x' * 27)):,} B)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
