"""An Ollama that Ollacache did not start is still charted: the engine finds the process serving the upstream
port, or says why it cannot read it."""

from __future__ import annotations

import os
import sys

import httpx
import psutil

from core.observe.listener import RECHECK_S, Found, Listener, find_listener
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy


def test_the_process_serving_the_upstream_port_is_found(upstream: tuple[FakeOllama, str]) -> None:
    port = int(upstream[1].rsplit(":", 1)[1])
    assert find_listener(port) == Found(pid=os.getpid())  # the fake serves from a thread of this process


def test_an_attached_ollamas_cpu_and_memory_are_in_the_stats(proxy: RunningProxy) -> None:
    resources = httpx.get(proxy.url + "/-/stats").json()["resources"]
    ollama = resources["ollama"]
    assert ollama["pid"] == os.getpid() and ollama["rss_bytes"] > 0
    assert "ollama_unreadable" not in resources


def test_a_process_found_is_kept_while_it_lives_and_none_found_is_looked_for_again_now_and_then() -> None:
    now = [0.0]
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer exists
    answers = [
        Found(pid=os.getpid()),
        Found(),
        Found(unreadable="it runs as another user"),
        Found(pid=gone.pid),
        Found(),
    ]
    asked: list[int] = []

    def find(port: int) -> Found:
        asked.append(port)
        return answers[len(asked) - 1]

    live = Listener(11434, find=find, clock=lambda: now[0])
    assert live.current().pid == os.getpid()
    now[0] = RECHECK_S * 10
    assert live.current().pid == os.getpid() and len(asked) == 1  # alive: the socket table is not read again

    asked.clear()
    answers[:] = [Found(), Found(unreadable="it runs as another user"), Found(pid=gone.pid), Found()]
    now[0] = 0.0
    absent = Listener(11434, find=find, clock=lambda: now[0])
    assert absent.current() == Found()
    now[0] = RECHECK_S / 2
    assert absent.current() == Found() and len(asked) == 1  # none known: not before RECHECK_S
    now[0] = RECHECK_S
    assert absent.current().unreadable == "it runs as another user"
    now[0] = RECHECK_S * 2
    assert absent.current().pid == gone.pid
    assert absent.current() == Found() and len(asked) == 4  # the process it named is gone: looked for at once
