"""``ollacache selftest``: start the proxy in front of a built-in upstream and check it caches.

The proxy runs as a child process started the way the tray app starts the engine (``python -m core
serve``, or the frozen executable with ``serve``), so a frozen build is checked as it runs for a user. It
listens on a free port of 127.0.0.1 in front of :class:`core.cli.selftest_upstream.SelftestUpstream`, with
a throwaway config, cache and log directory (never the user's, and no ``OLLACACHE_*`` from outside), and
Ollama supervision off. One chat request is sent twice: the first must be a MISS that the upstream
answered, the second a HIT it never saw. Each step is printed; exit 0 when all passed, 1 saying what failed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from core import __version__
from core.cli.selftest_upstream import ANSWER, MODEL, SelftestUpstream
from core.control import token as tokens
from core.control.client import ControlClient, ControlError
from core.frozen import command, is_frozen, own_environment

START_S = 60.0  # how long the proxy may take to say it is serving
REQUEST_S = 30.0
STOP_S = 30.0
SERVING = re.compile(r"ollacache: serving on (http://\S+)")
REQUEST = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "ping"}],
    "stream": False,
    "options": {"temperature": 0, "seed": 1},
}
EXPECTED = ("MISS", "HIT")


class SelftestFailed(Exception):
    """A step of the selftest failed; the message says which and what was seen."""


def engine_command(upstream: str) -> list[str]:
    """The proxy's command line: ``ollacache serve`` on a free port of 127.0.0.1 in front of ``upstream``."""
    return command("serve", "--host", "127.0.0.1", "--port", "0", "--upstream", upstream)


def child_environment(inherited: Mapping[str, str], home: Path) -> dict[str, str]:
    """``inherited`` (as another instance of the app gets it) without any ``OLLACACHE_*``, with config, cache
    and logs under ``home`` and Ollama supervision and port takeover off."""
    environment = {
        name: value for name, value in own_environment(inherited).items() if not name.startswith("OLLACACHE_")
    }
    return {
        **environment,
        "OLLACACHE_CONFIG_DIR": str(home / "config"),
        "OLLACACHE_CACHE_DIR": str(home / "cache"),
        "OLLACACHE_LOG_DIR": str(home / "logs"),
        "OLLACACHE_MANAGE_OLLAMA": "never",
        "OLLACACHE_PORT_TAKEOVER": "false",
    }


def run_selftest(out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run the selftest, printing each step to ``out`` and a failure to ``err``; the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    how = "frozen" if is_frozen() else f"Python {sys.version.split()[0]}"
    print(f"ollacache selftest: ollacache {__version__} ({how})", file=out, flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="ollacache-selftest-") as home, SelftestUpstream() as upstream:
            print(f"upstream: built-in Ollama stand-in on {upstream.url}", file=out, flush=True)
            _check(upstream, Path(home), out)
    except SelftestFailed as failure:
        print(f"ollacache selftest: FAILED: {failure}", file=err, flush=True)
        return 1
    print("selftest passed", file=out, flush=True)
    return 0


def _check(upstream: SelftestUpstream, home: Path, out: IO[str]) -> None:
    argv = engine_command(upstream.url)
    try:
        process = subprocess.Popen(
            argv,
            env=child_environment(os.environ, home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as error:
        raise SelftestFailed(f"the proxy could not be started ({' '.join(argv)}): {error}") from error
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    url: str | None = None
    try:
        url = serving_url(process, lines, seen)
        print(f"proxy: {' '.join(argv)} serving on {url} (pid {process.pid})", file=out, flush=True)
        with httpx.Client(base_url=url, timeout=REQUEST_S, trust_env=False) as client:
            for number, expected in enumerate(EXPECTED, start=1):
                _ask(client, number, expected, upstream, out)
    finally:
        code = _stop(process, url, home / "config")
        reader.join()
    if code != 0:
        raise SelftestFailed(f"the proxy exited with status {code} when stopped{_tail(seen, lines)}")
    print("proxy: stopped cleanly", file=out, flush=True)


def read_lines(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    """Put each line of ``stream`` into ``lines`` (a thread's work), then ``None`` at its end."""
    if stream is not None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        stream.close()
    lines.put(None)


def serving_url(process: subprocess.Popen[str], lines: queue.Queue[str | None], seen: list[str]) -> str:
    """The URL the proxy prints once it listens; fails when it exits first or stays silent too long."""
    deadline = time.monotonic() + START_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            code = process.wait()
            raise SelftestFailed(f"the proxy exited with status {code} before serving{_tail(seen)}")
        seen.append(line)
        if match := SERVING.search(line):
            return match.group(1)
    raise SelftestFailed(f"the proxy did not start serving within {START_S:g} s{_tail(seen)}")


def _ask(client: httpx.Client, number: int, expected: str, upstream: SelftestUpstream, out: IO[str]) -> None:
    before = upstream.chats
    try:
        response = client.post("/api/chat", json=REQUEST)
    except httpx.HTTPError as error:
        raise SelftestFailed(f"request {number} to the proxy failed: {error}") from error
    status = response.headers.get("x-cache", "(no X-Cache header)")
    answered = upstream.chats - before
    print(
        f"request {number}: {status} (HTTP {response.status_code}; the upstream answered {answered})",
        file=out,
        flush=True,
    )
    if response.status_code != 200:
        raise SelftestFailed(f"request {number} answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        content = response.json()["message"]["content"]
    except (ValueError, KeyError, TypeError):
        content = None
    if content != ANSWER:
        raise SelftestFailed(f"request {number} answered {response.text[:200]!r}, not the upstream's {ANSWER!r}")
    if status != expected:
        raise SelftestFailed(
            f"request {number} was {status}, expected {expected}"
            + (" (the cache did not keep the first answer)" if expected == "HIT" else "")
        )
    if answered != (1 if expected == "MISS" else 0):
        raise SelftestFailed(f"request {number} ({status}) reached the upstream {answered} times")


def _stop(process: subprocess.Popen[str], url: str | None, config: Path) -> int:
    """Stop the proxy as the app does, by its shutdown call (on Windows a signal is a hard kill, whose exit
    status says nothing), SIGTERM when it does not answer, a kill if it does not stop within :data:`STOP_S`;
    its exit status, 0 after a clean stop on every platform."""
    if process.poll() is None:
        asked = False
        if url is not None:
            with contextlib.suppress(ControlError):
                with ControlClient(url, tokens.read(config)) as client:
                    client.shutdown()
                    asked = True
        if not asked:
            process.terminate()
        try:
            return process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _tail(seen: list[str], lines: queue.Queue[str | None] | None = None, count: int = 15) -> str:
    """The proxy's last lines of output, to show with a failure."""
    if lines is not None:
        while not lines.empty():
            line = lines.get()
            if line is not None:
                seen.append(line)
    shown = seen[-count:]
    return ("; its output:\n  " + "\n  ".join(shown)) if shown else " (no output)"
