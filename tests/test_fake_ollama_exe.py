"""The fake ``ollama`` executable behaves like the real one where supervision looks: a real process each time.

Every process listens on a port it picks itself (``OLLAMA_HOST=...:0``) and is waited on through its
``Listening on`` log line or its exit, never through a sleep. Durations are in seconds.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fakes.ollama_exe import parse_host
from tests.fakes.ollama_server import FakeOllama

BIN = Path(__file__).resolve().parent / "fakes" / "bin" / "ollama"
LISTENING = re.compile(r'msg="Listening on (\S+):(\d+) \(version ([^)]+)\)"')
BOUND = 20.0  # the longest any wait here may take, for a slow machine; a pass takes well under a second


class FakeProcess:
    """``ollama serve`` (the fake) as a child process; a thread collects its stderr lines."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """The first stderr line (from here on) matching ``pattern``; fails at EOF or after BOUND."""
        deadline = time.monotonic() + BOUND
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"stderr ended without {pattern!r}: {self.lines}")
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        pytest.fail(f"no {pattern!r} within {BOUND} s: {self.lines}")

    def wait_listening(self) -> str:
        """Wait for the ``Listening on HOST:PORT`` line; the base URL."""
        match = self.wait_for_line(LISTENING)
        self.url = f"http://{match.group(1)}:{match.group(2)}"
        return self.url

    def wait_exit(self) -> int:
        code = self.proc.wait(timeout=BOUND)
        while (line := self._queue.get(timeout=BOUND)) is not None:  # the rest of stderr, up to EOF
            self.lines.append(line)
        return code


def fake_env(**extra: str) -> dict[str, str]:
    """This environment without Ollama's and the fake's variables, plus ``extra``; on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "LLAMA_", "FAKE_OLLAMA_"))}
    return {**env, "OLLACACHE_TEST_PYTHON": sys.executable, "OLLAMA_HOST": "127.0.0.1:0", **extra}


@pytest.fixture
def start() -> Iterator[Callable[..., FakeProcess]]:
    """Start fake ``ollama serve`` processes with extra environment; any still running are killed after."""
    started: list[FakeProcess] = []

    def run(**extra: str) -> FakeProcess:
        started.append(FakeProcess(fake_env(**extra)))
        return started[-1]

    yield run
    for fake in started:
        if fake.proc.poll() is None:
            fake.proc.kill()
        fake.proc.wait(timeout=BOUND)
        if fake.proc.stderr is not None:
            fake.proc.stderr.close()


def test_it_serves_at_ollama_host_shows_its_environment_and_exits_0_on_sigterm(
    start: Callable[..., FakeProcess],
) -> None:
    fake = start(
        OLLAMA_HOST="http://127.0.0.1:0", LLAMA_ARG_THREADS="3", OLLAMA_KEEP_ALIVE="10m", UNRELATED_SETTING="x"
    )
    url = fake.wait_listening()
    assert any('msg="server config"' in line and "LLAMA_ARG_THREADS:3" in line for line in fake.lines)
    assert httpx.get(f"{url}/api/version", timeout=BOUND).json() == {"version": "0.12.0"}
    assert httpx.get(f"{url}/api/tags", timeout=BOUND).json()["models"]  # the whole fake API is there
    shown = httpx.get(f"{url}/_fake/env", timeout=BOUND).json()
    assert shown["pid"] == fake.proc.pid and shown["runner_pid"] is None
    assert shown["env"] == {"LLAMA_ARG_THREADS": "3", "OLLAMA_HOST": "http://127.0.0.1:0", "OLLAMA_KEEP_ALIVE": "10m"}
    fake.proc.send_signal(signal.SIGTERM)
    assert fake.wait_exit() == 0


@pytest.mark.parametrize(("path", "status"), [("/_fake/crash", 2), ("/_fake/exit", 0)])
def test_control_endpoints_make_it_exit(start: Callable[..., FakeProcess], path: str, status: int) -> None:
    fake = start()
    answer = httpx.post(f"{fake.wait_listening()}{path}", timeout=BOUND)
    assert answer.status_code == 200
    assert fake.wait_exit() == status
    assert any(line.startswith("panic: ") for line in fake.lines) == (status == 2)


def test_it_can_crash_on_its_own_or_fail_to_start(start: Callable[..., FakeProcess]) -> None:
    crashing = start(FAKE_OLLAMA_CRASH_AFTER_S="0.2")
    failing = start(FAKE_OLLAMA_EXIT_AT_START="1")
    crashing.wait_listening()
    assert crashing.wait_exit() == 2 and "panic: fake crash (FAKE_OLLAMA_CRASH_AFTER_S)" in crashing.lines
    assert failing.wait_exit() == 1
    assert failing.lines[-1].startswith("Error: ") and not any(LISTENING.search(line) for line in failing.lines)


def test_a_port_in_use_fails_like_ollama(start: Callable[..., FakeProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fake = start(OLLAMA_HOST=f"127.0.0.1:{port}")
        assert fake.wait_exit() == 1
    assert fake.lines[-1] == f"Error: listen tcp 127.0.0.1:{port}: bind: address already in use"


def test_ignore_term_survives_sigterm_and_dies_on_sigkill(start: Callable[..., FakeProcess]) -> None:
    fake = start(FAKE_OLLAMA_IGNORE_TERM="1")
    url = fake.wait_listening()
    fake.proc.send_signal(signal.SIGTERM)
    fake.wait_for_line("received SIGTERM, ignoring it")
    assert httpx.get(f"{url}/api/version", timeout=BOUND).status_code == 200 and fake.proc.poll() is None
    fake.proc.kill()
    assert fake.wait_exit() == -signal.SIGKILL


@pytest.mark.parametrize("how", ["environment", "endpoint"])
def test_a_hung_ollama_accepts_but_never_answers(start: Callable[..., FakeProcess], how: str) -> None:
    fake = start(FAKE_OLLAMA_HANG="1") if how == "environment" else start()
    url = fake.wait_listening()
    if how == "endpoint":
        assert httpx.get(f"{url}/api/version", timeout=BOUND).status_code == 200
        assert httpx.post(f"{url}/_fake/hang", timeout=BOUND).json() == {"status": "hanging"}
    with pytest.raises(httpx.ReadTimeout):  # connected, then no answer
        httpx.get(f"{url}/api/version", timeout=httpx.Timeout(0.3, connect=BOUND))
    assert httpx.get(f"{url}/_fake/env", timeout=BOUND).status_code == 200  # the control side still answers
    fake.proc.send_signal(signal.SIGTERM)
    assert fake.wait_exit() == 0


def test_the_runner_child_is_part_of_its_process_tree_and_dies_with_it(start: Callable[..., FakeProcess]) -> None:
    fake = start(FAKE_OLLAMA_SPAWN_RUNNER="1")
    runner_pid = httpx.get(f"{fake.wait_listening()}/_fake/env", timeout=BOUND).json()["runner_pid"]
    assert runner_pid in [child.pid for child in psutil.Process(fake.proc.pid).children(recursive=True)]
    runner = psutil.Process(runner_pid)
    fake.proc.kill()
    assert fake.wait_exit() == -signal.SIGKILL
    deadline = time.monotonic() + BOUND  # it sees its parent go (EOF on its stdin) and exits
    while not _exited(runner):
        assert time.monotonic() < deadline, f"the runner {runner_pid} outlived its server"


def test_a_loaded_model_has_a_runner_naming_its_model_file_until_it_is_unloaded(
    start: Callable[..., FakeProcess], tmp_path: Path
) -> None:
    fake = start(FAKE_OLLAMA_RUNNERS="1", OLLAMA_MODELS=str(tmp_path))
    url = fake.wait_listening()
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    assert httpx.post(f"{url}/api/chat", json=chat, timeout=BOUND).status_code == 200
    runner_pid = httpx.get(f"{url}/_fake/env", timeout=BOUND).json()["runners"]["llama3.2:latest"]
    runner = psutil.Process(runner_pid)
    assert runner in psutil.Process(fake.proc.pid).children(recursive=True)
    modelfile = httpx.post(f"{url}/api/show", json={"model": "llama3.2"}, timeout=BOUND).json()["modelfile"]
    blob = next(line.split(" ", 1)[1] for line in modelfile.splitlines() if line.startswith("FROM "))
    assert blob.startswith(str(tmp_path / "blobs" / "sha256-"))  # in OLLAMA_MODELS, as Ollama names it
    assert runner.cmdline()[-4:] == ["--model", blob, "--port", "0"]
    unload = {"model": "llama3.2", "keep_alive": 0, "stream": False}
    assert httpx.post(f"{url}/api/generate", json=unload, timeout=BOUND).status_code == 200
    assert httpx.get(f"{url}/_fake/env", timeout=BOUND).json()["runners"] == {}
    assert _exited(runner)


def _exited(process: psutil.Process) -> bool:
    """Whether ``process`` has exited, waiting a little for it; a zombie counts (init may reap it late)."""
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        process.wait(timeout=0.05)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_version_flag_prints_what_ollama_prints(tmp_path: Path, upstream: tuple[FakeOllama, str]) -> None:
    (tmp_path / "tests").mkdir()  # a decoy package in the working directory must not shadow the fake
    (tmp_path / "tests" / "__init__.py").write_text("raise ImportError('the wrong tests package')\n")

    def version(host: str, **extra: str) -> str:
        result = subprocess.run(
            [str(BIN), "--version"],
            env=fake_env(OLLAMA_HOST=host, **extra),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=BOUND,
            check=True,
        )
        return result.stdout

    assert version(upstream[1]) == "ollama version is 0.12.0\n"
    assert version(upstream[1], FAKE_OLLAMA_VERSION="0.11.4") == (
        "ollama version is 0.12.0\nWarning: client version is 0.11.4\n"
    )
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        assert version(f"127.0.0.1:{closed.getsockname()[1]}") == (
            "Warning: could not connect to a running Ollama instance\nWarning: client version is 0.12.0\n"
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("127.0.0.1", 11434)),
        ("127.0.0.1:11444", ("127.0.0.1", 11444)),
        ("http://127.0.0.1:11444", ("127.0.0.1", 11444)),
        ("  http://127.0.0.1:11444/some/path ", ("127.0.0.1", 11444)),
        ("0.0.0.0", ("0.0.0.0", 11434)),
        (":11444", ("", 11444)),
        ("localhost", ("localhost", 11434)),
        ("http://127.0.0.1", ("127.0.0.1", 80)),
        ("https://example.com", ("example.com", 443)),
        ("[::1]:11444", ("::1", 11444)),
        ("[::1]", ("::1", 11434)),
        ("::1", ("::1", 11434)),
        ("127.0.0.1:99999", ("127.0.0.1", 11434)),
        ("127.0.0.1:", ("127.0.0.1", 11434)),
    ],
)
def test_ollama_host_is_read_as_ollama_reads_it(value: str, expected: tuple[str, int]) -> None:
    assert parse_host(value) == expected
