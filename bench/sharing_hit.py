"""What sharing with API keys costs a hit: p50/p90/p99 with sharing off and on (target: p50 within 1.1x).

Three proxies in front of one fake Ollama, on one cache dir, each with its own config dir: (a) sharing off (the
defaults); (b) its twin, started alike, whose ratio to (a) is the run's noise floor (two processes that do the
same work differ by a few per cent on this machine); (c) ``--share --require-key always`` with a key made in
its own config dir (``python -m core keys add``), every request carrying ``Authorization: Bearer <key>``,
which that proxy checks, consumes (it is not in the cache key) and counts per key. A ~1 KB non-streamed
``/api/chat`` answer is primed on (a) (MISS, then HIT) and is then a HIT on all three, the very same bytes.
Each proxy is timed over one keep-alive connection with a pre-built raw request (hit_latency.py's client),
taking turns in ``--rounds`` rounds (each round starts with the next proxy) so a slow spell of the machine
hits all alike. Servers on core 0, this client on core 1. Prints p50/p90/p99 of each and the ratios to (a);
never fails on time.

    .venv/bin/python bench/sharing_hit.py [--requests 20000] [--warmup 1000] [--rounds 200] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CHAT_BODY,
    CLIENT_CPU,
    PYTHON,
    REPO,
    SERVER_CPU,
    Stack,
    busy_note,
    latency_counts,
    latency_options,
    machine_busy,
    pin_self,
    print_latency_rows,
    report,
    revision,
    taskset,
)
from hit_latency import Client, interleaved

TARGET_RATIO = 1.1
OFF = "sharing off (defaults)"
TWIN = "sharing off, a second proxy (the noise floor)"
ON = "sharing on (--share --require-key always, key sent)"
SERVING_RE = re.compile(rb"serving on http://[^:/\s]+:(\d+)")  # a shared proxy prints http://0.0.0.0:PORT


def call(
    url: str, key: str = "", path: str = "/api/chat", body: bytes | None = CHAT_BODY, cached_only: bool = False
) -> tuple[int, str, bytes]:
    """One request (a POST of ``body``, a GET without), with ``key`` as a bearer token when given and
    ``Cache-Control: only-if-cached`` if ``cached_only``: (status, X-Cache, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    headers.update({"Authorization": f"Bearer {key}"} if key else {})
    headers.update({"Cache-Control": "only-if-cached"} if cached_only else {})
    try:
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.getheader("X-Cache", ""), answer.read()
    finally:
        conn.close()


def hit(url: str, key: str = "") -> bytes:
    """The bench's request on ``url``, only if cached, until it is a HIT (the other proxy writes the entry to
    the shared store within a few ms; a miss would store a second answer); the answer's body."""
    for _ in range(200):
        status, cache, answer = call(url, key, cached_only=True)
        if status == 200 and cache == "HIT":
            return answer
        time.sleep(0.05)
    raise RuntimeError(f"{url}: no HIT (last: {status} {cache})")


def start_variant(stack: Stack, name: str, flags: list[str], with_key: bool) -> tuple[str, str]:
    """A proxy like ``Stack.start_proxy``'s (same cache dir, a config dir of its own named ``name``) started with
    ``flags``, with a key made first in that config dir if ``with_key``; (its loopback URL, the key or "")."""
    env = {**os.environ, "OLLACACHE_CONFIG_DIR": str(stack.dir / f"config-{name}")}
    Path(env["OLLACACHE_CONFIG_DIR"]).mkdir()
    key = ""
    if with_key:
        made = subprocess.run([PYTHON, "-m", "core", "keys", "add", "bench"], cwd=REPO, env=env, capture_output=True)
        if made.returncode != 0:
            raise RuntimeError(f"keys add failed: {made.stderr.decode()[-2000:]}")
        key = made.stdout.decode().split()[-1]  # the last word of the last line
    serve = ["serve", "--port", "0", "--upstream", stack.fake_url, "--cache-dir", str(stack.dir / "cache")]
    cmd = [*taskset(SERVER_CPU), PYTHON, "-m", "core", *serve, *flags]
    log = stack._log(f"proxy-{name}")  # noqa: SLF001 - the stack's own log files
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)
    stack.procs.append((proc, signal.SIGTERM))  # stopped with the stack
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        if found := SERVING_RE.search(line):
            return f"http://127.0.0.1:{found.group(1).decode()}", key
    raise RuntimeError(f"the {name} proxy did not start: {(stack.dir / f'proxy-{name}.err').read_text()[-2000:]}")


def run(requests: int, warmup: int, rounds: int) -> dict[str, Any]:
    """Start the fake and both proxies, check them, time both, stop everything; returns the results."""
    pin_self(CLIENT_CPU)
    results: dict[str, Any] = {"revision": revision(), "requests": requests, "warmup": warmup, "rounds": rounds}
    results["busy_before"] = machine_busy()
    with Stack() as stack:
        stack.start_fake()
        off_url = stack.start_proxy()
        twin_url, _ = start_variant(stack, "twin", [], with_key=False)
        on_url, key = start_variant(stack, "shared", ["--share", "--require-key", "always"], with_key=True)
        stack.prime("/api/chat", CHAT_BODY)  # a MISS then a HIT on the proxy without sharing
        # the key is not in the cache key: the same entry
        answers = {OFF: hit(off_url), TWIN: hit(twin_url), ON: hit(on_url, key)}
        if len(set(answers.values())) != 1:
            raise RuntimeError("the proxies answered different bytes")
        results["answer_bytes"] = len(answers[ON])
        results["keyless_status"] = call(on_url)[0]  # sharing really on: 401 without the key
        clients = {
            OFF: Client(off_url, "/api/chat", CHAT_BODY),
            TWIN: Client(twin_url, "/api/chat", CHAT_BODY),
            ON: Client(on_url, "/api/chat", CHAT_BODY),
        }
        clients[ON].request = clients[ON].request.replace(b"\r\n", f"\r\nAuthorization: Bearer {key}\r\n".encode(), 1)
        try:
            rows = interleaved(clients, requests, warmup, rounds)
        finally:
            for client in clients.values():
                client.close()
        results["still_hit_after"] = call(off_url)[1] == "HIT" and call(on_url, key)[1] == "HIT"
        stats = json.loads(call(on_url, key, "/-/stats", None)[2])
        results["key_requests_counted"] = stats.get("keys", {}).get("bench", {}).get("requests", 0)
    results["rows"] = rows
    results["ratios"] = {q: rows[ON][q] / rows[OFF][q] for q in ("p50", "p99")}
    results["twin_ratios"] = {q: rows[TWIN][q] / rows[OFF][q] for q in ("p50", "p99")}
    results["meets_target"] = results["ratios"]["p50"] <= TARGET_RATIO
    return results


def print_table(results: dict[str, Any]) -> None:
    """The human-readable report."""
    rows: dict[str, dict[str, float]] = results["rows"]
    print(
        f"hit latency, sharing off vs on, at {results['revision']}: one keep-alive connection per proxy, "
        f"{results['requests']} requests each after {results['warmup']} warm-up, interleaved in {results['rounds']} "
        f"rounds; proxies on core 0, client on core 1; the same {results['answer_bytes']} B /api/chat answer"
    )
    print(busy_note(results["busy_before"]))
    print_latency_rows(rows, "proxy")
    ratios = results["ratios"]
    verdict = "meets" if results["meets_target"] else "MISSES"
    print(f"p50 on / p50 off: {ratios['p50']:.2f}x (target: within {TARGET_RATIO}x: {verdict})")
    print(f"p99 on / p99 off: {ratios['p99']:.2f}x")
    twin = results["twin_ratios"]
    print(f"two proxies alike (twin / off), the run's noise: p50 {twin['p50']:.2f}x, p99 {twin['p99']:.2f}x")
    print(
        f"checks: without the key the shared proxy answered {results['keyless_status']}; "
        f"requests counted for the key: {results['key_requests_counted']}"
    )
    if not results["still_hit_after"]:
        print("warning: a proxy no longer answered HIT after the run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    latency_options(parser, "proxy", "proxies", requests=20000, warmup=1000, rounds=200)
    args = parser.parse_args(argv)
    return report(lambda: run(*latency_counts(args)), args.json, print_table)


if __name__ == "__main__":
    sys.exit(main())
