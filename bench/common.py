"""Shared plumbing of the bench scripts: start the fake Ollama, the proxy and nginx, pinned to cores.

Everything listens on 127.0.0.1 with a port picked by the kernel, lives in one temporary directory and
is stopped (SIGTERM, then SIGKILL) when the :class:`Stack` closes, whatever happened in between.
Nothing here times anything; the scripts do that.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
URL_RE = re.compile(rb"http://127\.0\.0\.1:\d+")

#: A non-streamed /api/chat request; the fake answers it with ~1 KB (1,011-1,012 B) at ANSWER_TOKENS words.
CHAT_BODY = json.dumps(
    {
        "model": "llama3.2",
        "stream": False,
        "options": {"temperature": 0},
        "messages": [{"role": "user", "content": "Why is a cache hit cheaper than a model call?"}],
    },
    separators=(",", ":"),
).encode()
#: A streamed /api/generate request (Ollama streams by default): ANSWER_TOKENS + 1 NDJSON chunks, ~12 KB.
GENERATE_BODY = json.dumps(
    {
        "model": "llama3.2",
        "prompt": "Describe a caching proxy.",
        "options": {"temperature": 0},
    },
    separators=(",", ":"),
).encode()
ANSWER_TOKENS = 110

SERVER_CPU = 0  # proxy / fake / nginx
CLIENT_CPU = 1  # the measuring client or wrk


def pin_self(cpu: int) -> None:
    """Pin the calling process to ``cpu`` when the machine has it (no-op on a 1-core machine)."""
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def machine_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` before a run (other work on the box skews figures)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except OSError:
        return float("nan")
    return (busy1 - busy0) / max(1, total1 - total0)


def busy_note(busy: float) -> str:
    """The report line about other work on the machine (measured by :func:`machine_busy`)."""
    warning = "  (other work was running: figures are skewed)" if busy > 0.05 else ""
    return f"machine busy before the run: {busy:.0%}{warning}"


def revision() -> str:
    """The commit measured, e.g. ``379db24`` or ``379db24+dirty core/`` (a bench figure needs its code)."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "core")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head or 'unknown'}{'+dirty core/' if dirty else ''}"


def _git(*args: str) -> str:
    """A read-only git query on the repository (never takes the index lock or refreshes it)."""
    done = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()


def taskset(cpu: int) -> list[str]:
    """A command prefix pinning a child (and all its threads) to ``cpu``, if taskset exists."""
    tool = shutil.which("taskset")
    return [tool, "-c", str(cpu)] if tool and cpu < (os.cpu_count() or 1) else []


def post(url: str, path: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One POST with the standard library: (status, lower-cased headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def raw_request(url: str, path: str, body: bytes) -> bytes:
    """A pre-built HTTP/1.1 keep-alive POST, as bytes ready for ``sendall``."""
    host = urlsplit(url).netloc
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Stack:
    """The processes a bench run needs, in one temporary directory, stopped on :meth:`close`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ollacache-bench-"))
        self.procs: list[tuple[subprocess.Popen[bytes], int]] = []  # with the signal that stops each
        self.logs: list[IO[bytes]] = []
        self.fake_url = self.proxy_url = self.nginx_url = ""
        self.proxy_pid = 0
        self.nginx_mode = ""

    def __enter__(self) -> Self:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)  # so `finally` / __exit__ still run
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _start(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 20.0
    ) -> tuple[subprocess.Popen[bytes], str]:
        """Start ``cmd`` and wait for the first URL it prints on stdout."""
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log(name),
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append((proc, signal.SIGTERM))
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = URL_RE.search(line)
            if found:
                return proc, found.group().decode()
        raise RuntimeError(f"{name} did not start: {(self.dir / f'{name}.err').read_text()[-2000:]}")

    def start_fake(self, cpu: int | None = SERVER_CPU, tokens: int = ANSWER_TOKENS) -> str:
        """The fake Ollama upstream; answers carry ``tokens`` words."""
        cmd = [*(taskset(cpu) if cpu is not None else []), PYTHON, "-m", "tests.fakes.ollama_server", "--port", "0"]
        _, self.fake_url = self._start("fake", cmd)
        post(self.fake_url, "/_fake/config", json.dumps({"tokens": tokens}).encode())
        return self.fake_url

    def _log(self, name: str) -> IO[bytes]:
        log = open(self.dir / f"{name}.err", "wb")  # noqa: SIM115 - open for the child's lifetime
        self.logs.append(log)
        return log

    def start_proxy(self, cpu: int | None = SERVER_CPU) -> str:
        """The proxy in front of the fake, with fresh config and cache dirs."""
        (self.dir / "config").mkdir(exist_ok=True)
        cmd = [
            *(taskset(cpu) if cpu is not None else []),
            PYTHON,
            "-m",
            "core",
            "serve",
            "--port",
            "0",
            "--upstream",
            self.fake_url,
            "--cache-dir",
            str(self.dir / "cache"),
        ]
        proc, self.proxy_url = self._start("proxy", cmd, env={"OLLACACHE_CONFIG_DIR": str(self.dir / "config")})
        self.proxy_pid = proc.pid
        return self.proxy_url

    def start_nginx(self, path: str, body: bytes, content_type: str, cpu: int = SERVER_CPU) -> str:
        """nginx, one worker, answering POST (and GET) ``path`` with 200 and exactly ``body``.

        The bytes are served from memory with ``return 200 '...'`` (the physical floor: ~2x faster than
        the static-file handler, which refuses POST and needs an ``error_page 405 =200`` redirect). A
        body nginx cannot embed verbatim (``'``, ``\\``, ``$``, non-UTF-8) falls back to that redirect.
        """
        root = self.dir / "www"
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        text = body.decode("utf-8", "replace")
        if text.encode() == body and not any(c in text for c in "'\\$"):
            self.nginx_mode = "return 200 from memory"
            handler = f"return 200 '{text}';"
        else:
            self.nginx_mode = "static file via error_page 405 =200"
            handler = "error_page 405 =200 $uri;"
        port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
daemon off; master_process off; worker_processes 1;
pid {self.dir}/nginx.pid; error_log {self.dir}/nginx.error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off; server_tokens off; etag off; keepalive_requests 1000000;
  types {{ }} default_type "{content_type}";
  server {{
    listen 127.0.0.1:{port}; root {root};
    location = {path} {{ {handler} add_header X-Cache HIT; }}
  }}
}}
""")
        cmd = [*taskset(cpu), NGINX, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "nginx.error.log")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log("nginx"), start_new_session=True)
        self.procs.append((proc, signal.SIGQUIT))  # nginx's graceful stop
        self.nginx_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                status, headers, got = post(self.nginx_url, path, CHAT_BODY, timeout=1)
                if status != 200 or got != body or headers.get("content-type") != content_type:
                    raise RuntimeError(
                        f"nginx answered {status} {headers.get('content-type')} with {len(got)} "
                        "bytes, not the proxy's answer"
                    )
                return self.nginx_url
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {(self.dir / 'nginx.err').read_text()}") from None
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def prime(self, path: str, body: bytes) -> tuple[dict[str, str], bytes]:
        """Send ``body`` twice through the proxy; check MISS then HIT (200); return the hit."""
        status, headers, _ = post(self.proxy_url, path, body)
        if status != 200 or headers.get("x-cache") != "MISS":
            raise RuntimeError(f"priming {path}: expected 200 MISS, got {status} {headers.get('x-cache')}")
        for _ in range(50):  # the entry is in the hot tier at once; allow for a slow store write anyway
            status, headers, answer = post(self.proxy_url, path, body)
            if status == 200 and headers.get("x-cache") == "HIT":
                return headers, answer
            time.sleep(0.05)
        raise RuntimeError(f"{path}: no HIT after priming (last: {status} {headers.get('x-cache')})")

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 5 s) and remove the temporary directory."""
        for proc, stop in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(stop)
        for proc, _ in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _exit_on_signal(sig: int, frame: Any) -> None:
    sys.exit(128 + sig)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def print_latency_rows(rows: dict[str, dict[str, float]], first: str) -> None:
    """A table of latency figures in microseconds, one row per target (``first`` heads the names), with the
    bytes on the wire when the rows carry them."""
    wire = all("wire_bytes" in row for row in rows.values())
    width = max(len(name) for name in rows)
    print(
        f"{first:<{width}}  {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} {'mean':>7} (us)" + ("  wire B" if wire else "")
    )
    for name, row in rows.items():
        figures = f"{row['p50']:7.1f} {row['p90']:7.1f} {row['p99']:7.1f} {row['max']:8.1f} {row['mean']:7.1f}"
        print(f"{name:<{width}}  {figures}" + (f"       {int(row['wire_bytes'])}" if wire else ""))


def latency_options(
    parser: argparse.ArgumentParser, what: str, whats: str, requests: int, warmup: int, rounds: int
) -> None:
    """The options of a hit-latency bench (``what``: what it times, "proxy" or "target"; ``whats``: more than one),
    with their defaults, and ``--json``."""
    parser.add_argument(
        "--requests", type=int, default=requests, help=f"timed requests per {what} (default {requests})"
    )
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed requests first (default {warmup})")
    parser.add_argument(
        "--rounds", type=int, default=rounds, help=f"interleave the {whats} in this many rounds (default {rounds})"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def latency_counts(args: argparse.Namespace) -> tuple[int, int, int]:
    """The requests, warm-up requests and rounds of :func:`latency_options`, each within its sense."""
    requests = max(1, args.requests)
    return requests, max(0, args.warmup), min(max(1, args.rounds), requests)


def report(measure: Callable[[], dict[str, Any]], as_json: bool, table: Callable[[dict[str, Any]], None]) -> int:
    """Run ``measure`` and print its results, as JSON or as ``table`` prints them; the exit status (130 when
    interrupted)."""
    try:
        results = measure()
    except KeyboardInterrupt:
        return 130
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        table(results)
    return 0
