"""The server's edges: clients slow to send their headers are cut off, the open-file limit is raised,
and `serve` says at start what a user must know (no Ollama behind it, a bind open to the network)."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.engine.server import _Server
from core.http.header_timeout import header_timeout_protocol
from core.supervision.binary import install_hint
from tests.fakes.ollama_server import FakeOllama
from tests.harness import proxy_in_thread, proxy_process

SHORT_BOUND_S = 0.3
SAFETY_S = 60.0  # only so that a broken server fails the test instead of hanging it
PARTIAL = b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}


def short_header_bound(server: _Server) -> None:
    server.config.http = header_timeout_protocol(SHORT_BOUND_S)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    client = socket.create_connection((host, int(port)))
    client.settimeout(SAFETY_S)
    return client


def closed_by_server(client: socket.socket) -> bool:
    """Wait until the server closes the connection (EOF), reading whatever it sent first."""
    try:
        while chunk := client.recv(4096):
            assert not chunk.startswith(b"HTTP/1.1 2"), "a request that never ended was answered"
        return True
    except ConnectionResetError:
        return True


def test_clients_slow_to_send_headers_are_disconnected_while_others_are_served(
    upstream: tuple[FakeOllama, str],
) -> None:
    with proxy_in_thread(upstream[1], configure=short_header_bound) as proxy, contextlib.ExitStack() as stack:
        silent = [stack.enter_context(connect(proxy.url)) for _ in range(20)]
        dribbling = [stack.enter_context(connect(proxy.url)) for _ in range(20)]
        for client in dribbling:
            client.sendall(PARTIAL)
        with proxy.client() as http_client:
            assert http_client.post("/api/chat", json=CHAT).status_code == 200
        for client in silent + dribbling:
            assert closed_by_server(client)
        with proxy.client() as http_client:
            assert http_client.get("/api/version").status_code == 200


def test_a_kept_alive_connection_is_cut_when_its_next_request_dribbles(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_in_thread(upstream[1], configure=short_header_bound) as proxy:
        host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=SAFETY_S)
        try:
            connection.request("GET", "/api/version")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read()
            assert connection.sock is not None
            connection.sock.sendall(PARTIAL)
            assert closed_by_server(connection.sock)
        finally:
            connection.close()


def test_the_bound_is_on_headers_only_a_slow_answer_is_not_cut(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(first_byte_delay_ms=int(SHORT_BOUND_S * 1000 * 4))
    with proxy_in_thread(url, configure=short_header_bound) as proxy, proxy.client() as http_client:
        answer = http_client.post("/api/chat", json=CHAT)
        assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"


@pytest.fixture
def low_soft_open_file_limit() -> Iterator[int]:
    """This process's soft limit of open files lowered below the hard one, for the processes it starts."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 512) if hard == resource.RLIM_INFINITY else min(soft, hard // 2, 512)
    if hard != resource.RLIM_INFINITY and lowered >= hard:
        pytest.skip("the hard limit of open files is too low to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_file_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-file limit in /proc/PID/limits")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/limits")
def test_serve_raises_its_soft_open_file_limit_to_the_hard_one(
    upstream: tuple[FakeOllama, str], low_soft_open_file_limit: int
) -> None:
    with proxy_process(upstream[1]) as proxy:
        assert proxy.process is not None
        soft, hard = open_file_limits(proxy.process.pid)
        assert soft == hard and int(soft) > 512
        assert httpx.get(proxy.url + "/api/version").status_code == 200


def warnings_of(output: list[str]) -> list[str]:
    return [line.strip() for line in output if line.startswith("ollacache: warning:")]


def test_serve_in_front_of_an_answering_ollama_on_loopback_warns_of_nothing(upstream: tuple[FakeOllama, str]) -> None:
    with proxy_process(upstream[1], "--manage-ollama", "auto") as proxy:
        assert httpx.get(proxy.url + "/api/version").status_code == 200
    assert warnings_of(proxy.output) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(os.name != "posix", reason="the search path of a POSIX machine")
def test_serve_with_no_ollama_installed_and_none_answering_says_so_with_the_install_hint(tmp_path: Path) -> None:
    if any(Path(place).is_file() for place in ("/usr/local/bin/ollama", "/usr/bin/ollama")):
        pytest.skip("an ollama is installed on this machine")
    nowhere = f"http://127.0.0.1:{free_port()}"
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with proxy_process(nowhere, "--manage-ollama", "auto", env={"PATH": str(empty), "HOME": str(tmp_path)}) as proxy:
        pass
    [warning] = warnings_of(proxy.output)
    assert f"no Ollama to forward misses to: nothing answers at {nowhere}" in warning
    assert install_hint() in warning


def test_serve_with_ollama_unmanaged_and_none_answering_says_what_to_do() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with proxy_process(nowhere, "--manage-ollama", "never") as proxy:
        pass
    [warning] = warnings_of(proxy.output)
    assert f"nothing answers at {nowhere}" in warning and "ollama.manage is never" in warning


def test_a_bind_beyond_loopback_warns_that_the_proxy_and_its_entries_are_open_to_the_network(
    upstream: tuple[FakeOllama, str],
) -> None:
    with proxy_process(upstream[1], "--host", "0.0.0.0") as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/api/version").status_code == 200
    [warning] = warnings_of(proxy.output)
    assert "listening on 0.0.0.0" in warning and "/-/entries" in warning and "Host check is off" in warning
