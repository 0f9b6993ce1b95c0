"""Re-indexing a corpus through the proxy: batch embeddings cached per input.

A corpus of ``--chunks`` texts is embedded on ``/api/embed`` (nomic-embed-text) in batches of ``--batch``
inputs (first index: misses), then again after ``--changed`` % of the chunks were edited (re-index:
partials, only the edited inputs go upstream), then once more (repeat: hits). For each pass the script
prints the X-Cache / X-Cache-Inputs headers seen, the upstream calls and the inputs they asked for (counted
by the fake itself), and the wall time per batch through the proxy against the same batch sent straight to
the fake, right after it, over its own keep-alive connection (the reference). Each of ``--rounds`` rounds
uses a fresh corpus. Servers run pinned to core 0, this client to core 1. Never fails on time.

The fake runs as a child of this script (``--serve-fake``): the fake Ollama, plus ``GET /_fake/embed_inputs``
counting the calls on ``/api/embed`` and their inputs, those marked ``X-Bench-Direct`` (the reference) left out.

    .venv/bin/python bench/embed_reindex.py [--chunks 1000] [--batch 100] [--changed 1] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CLIENT_CPU,
    PYTHON,
    REPO,
    SERVER_CPU,
    Stack,
    busy_note,
    machine_busy,
    pin_self,
    report,
    revision,
    taskset,
)

MODEL = "nomic-embed-text"
WORDS = "cache proxy model vector index chunk query token batch store entry answer local disk memory".split()
PASSES = ("first index", "re-index", "repeat")
DIRECT = {"X-Bench-Direct": "1"}


def serve_fake() -> int:
    """The fake Ollama as a process, counting what the proxy asks of ``/api/embed`` (the fake keeps the bodies
    it received in-process only)."""
    sys.path.insert(0, str(REPO))
    from starlette.responses import JSONResponse
    from starlette.types import Message, Receive, Scope, Send

    from tests.fakes import ollama_server

    counts = {"calls": 0, "inputs": 0}

    def counted(receive: Receive) -> Receive:
        parts: list[bytes] = []

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    sent = json.loads(b"".join(parts) or b"{}").get("input")
                    counts["calls"] += 1
                    counts["inputs"] += len(sent) if isinstance(sent, list) else int(sent is not None)
            return message

        return wrapped

    class CountingFake(ollama_server.FakeOllama):
        def __init__(self, **config: Any) -> None:
            super().__init__(**config)
            inner = self.app

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] == "http" and scope["path"] == "/_fake/embed_inputs":
                    return await JSONResponse(counts)(scope, receive, send)
                if scope["type"] == "http" and scope["path"] == "/api/embed":
                    if (b"x-bench-direct", b"1") not in scope["headers"]:
                        receive = counted(receive)
                await inner(scope, receive, send)

            self.app = app

    ollama_server.FakeOllama = CountingFake  # type: ignore[misc]  # main() builds the fake by this name
    return ollama_server.main(["--port", "0"])


class Conn:
    """One keep-alive connection to ``url``."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, dict[str, str], bytes]:
        """(seconds to the last byte, status, lower-cased headers, body)."""
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        answer = self.conn.getresponse()
        data = answer.read()
        elapsed = time.perf_counter() - started
        return elapsed, answer.status, {k.lower(): v for k, v in answer.getheaders()}, data


def corpus(chunks: int, salt: str, words: int = 60) -> list[str]:
    rng = random.Random(salt)
    return [f"{salt}, chunk {i}: " + " ".join(rng.choices(WORDS, k=words)) for i in range(chunks)]


def edited(texts: list[str], percent: float) -> tuple[list[str], int]:
    """``texts`` with ``percent`` % of them edited, spread evenly; and how many."""
    count = min(len(texts), round(len(texts) * percent / 100))
    changed = list(texts)
    for k in range(count):
        at = int((k + 0.5) * len(texts) / count)
        changed[at] += " (edited)"
    return changed, count


def run(chunks: int, batch: int, percent: float, rounds: int) -> dict[str, Any]:
    """Start the fake and the proxy, run every pass of every round, stop everything; returns the results."""
    pin_self(CLIENT_CPU)
    results: dict[str, Any] = {"revision": revision(), "chunks": chunks, "batch": batch, "changed_percent": percent}
    results.update(rounds=rounds, busy_before=machine_busy())
    passes: dict[str, dict[str, Any]] = {
        name: {"proxy_s": [], "direct_s": [], "headers": Counter(), "calls": [], "inputs": [], "same_vectors": True}
        for name in PASSES
    }
    with Stack() as stack:
        _, stack.fake_url = stack._start("fake", [*taskset(SERVER_CPU), PYTHON, __file__, "--serve-fake"])
        stack.start_proxy()
        proxy, fake, control = Conn(stack.proxy_url), Conn(stack.fake_url, DIRECT), Conn(stack.fake_url)
        dim = len(json.loads(fake.call("POST", "/api/embed", body_of(["warm-up"]))[3])["embeddings"][0])
        for _ in range(3):  # untimed: the proxy learns the model's build, both connections settle
            proxy.call("POST", "/api/embed", body_of([f"warm-up {i}" for i in range(batch)]))
        for r in range(rounds):
            original = corpus(chunks, f"round {r}")
            changed, results["changed"] = edited(original, percent)
            for name, texts in zip(PASSES, (original, changed, changed), strict=True):
                row = passes[name]
                before = json.loads(control.call("GET", "/_fake/embed_inputs")[3])
                for start in range(0, chunks, batch):
                    body = body_of(texts[start : start + batch])
                    took, status, headers, answer = proxy.call("POST", "/api/embed", body)
                    took_direct, status_direct, _, direct = fake.call("POST", "/api/embed", body)
                    if status != 200 or status_direct != 200:
                        raise RuntimeError(f"{name}: proxy answered {status}, fake {status_direct}: {answer[:200]!r}")
                    row["proxy_s"].append(took)
                    row["direct_s"].append(took_direct)
                    row["headers"][f"{headers.get('x-cache')} {headers.get('x-cache-inputs')}"] += 1
                    same = json.loads(answer)["embeddings"] == json.loads(direct)["embeddings"]
                    row["same_vectors"] = row["same_vectors"] and same
                after = json.loads(control.call("GET", "/_fake/embed_inputs")[3])
                row["calls"].append(after["calls"] - before["calls"])
                row["inputs"].append(after["inputs"] - before["inputs"])
    results["dim"] = dim
    for row in passes.values():
        for key in ("proxy", "direct"):
            times = sorted(row.pop(f"{key}_s"))
            row[f"{key}_p50_ms"] = statistics.median(times) * 1000
            row[f"{key}_p90_ms"] = times[min(len(times) - 1, int(0.9 * len(times)))] * 1000
        row["headers"] = dict(row["headers"].most_common())
    results["passes"] = passes
    reindex, hits = passes["re-index"], passes["repeat"]
    results["ratios"] = {
        "reindex_inputs_over_corpus": statistics.mean(reindex["inputs"]) / chunks,
        "hit_p50_over_direct_p50": hits["proxy_p50_ms"] / hits["direct_p50_ms"],
        "partial_p50_over_direct_p50": reindex["proxy_p50_ms"] / reindex["direct_p50_ms"],
        "miss_p50_over_direct_p50": passes["first index"]["proxy_p50_ms"] / passes["first index"]["direct_p50_ms"],
    }
    return results


def body_of(texts: list[str]) -> bytes:
    return json.dumps({"model": MODEL, "input": texts}).encode()


def per_round(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else f"{min(values)}-{max(values)}"


def print_table(results: dict[str, Any]) -> None:
    """The human-readable report."""
    chunks, batch, passes, ratios = results["chunks"], results["batch"], results["passes"], results["ratios"]
    batches = -(-chunks // batch)
    print(
        f"embedding re-index at {results['revision']}: {chunks} chunks in {batches} batches of {batch} on /api/embed "
        f"({MODEL}, {results['dim']} floats per vector), {results['changed']} chunks ({results['changed_percent']:g}%) "
        f"edited before the re-index; {results['rounds']} round(s), each on a fresh corpus; "
        "servers on core 0, client on core 1"
    )
    print(busy_note(results["busy_before"]))
    per_input_ms = passes["first index"]["direct_p50_ms"] / batch
    print(
        "no delay of the fake's config applies to /api/embed (chunk_delay_ms paces streamed frames, "
        "first_byte_delay_ms is per call): the fake computes embeddings at no model cost, only its hashing "
        f"(~{per_input_ms:.2f} ms per input, in the direct times), so the times show the proxy's own work "
        "(plus that hashing for the inputs it sends upstream); a real model spends far more per input"
    )
    print(
        f"{'pass':<12} {'X-Cache X-Cache-Inputs (batches)':<34} {'upstream calls':>14} {'inputs':>7}  "
        f"{'proxy p50':>9} {'p90':>7}  {'direct p50':>10} {'p90':>7} (ms)  proxy/direct"
    )
    for name, row in passes.items():
        seen = ", ".join(f"{header} x{count}" for header, count in row["headers"].items())
        print(
            f"{name:<12} {seen:<34} {per_round(row['calls']):>14} {per_round(row['inputs']):>7}  "
            f"{row['proxy_p50_ms']:9.2f} {row['proxy_p90_ms']:7.2f}  {row['direct_p50_ms']:10.2f} "
            f"{row['direct_p90_ms']:7.2f}       {row['proxy_p50_ms'] / row['direct_p50_ms']:.2f}x"
        )
    print("(upstream calls and inputs: per round, as the fake received them from the proxy)")
    share = ratios["reindex_inputs_over_corpus"]
    print(
        f"re-index: {share * chunks:g} inputs sent upstream for a {chunks}-chunk corpus: {share:.1%} of it"
        + (f", {1 / share:.0f}x fewer" if share else "")
    )
    print(f"proxy hit p50 / direct fake p50, per batch of {batch}: {ratios['hit_p50_over_direct_p50']:.2f}x")
    print(f"proxy partial p50 / direct fake p50: {ratios['partial_p50_over_direct_p50']:.2f}x")
    print(f"proxy miss p50 / direct fake p50: {ratios['miss_p50_over_direct_p50']:.2f}x")
    if not all(row["same_vectors"] for row in passes.values()):
        print("warning: some proxy answers held other vectors than the fake's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1000, help="chunks in the corpus (default 1000)")
    parser.add_argument("--batch", type=int, default=100, help="inputs per /api/embed request (default 100)")
    parser.add_argument("--changed", type=float, default=1.0, help="%% of chunks edited before re-index (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on a fresh corpus (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        return serve_fake()
    return report(
        lambda: run(max(1, args.chunks), max(1, args.batch), max(0.0, args.changed), max(1, args.rounds)),
        args.json,
        print_table,
    )


if __name__ == "__main__":
    sys.exit(main())
