"""An Ollama that Ollacache did not start is still charted: the engine finds the process serving the upstream
port, or says why it cannot read it."""

from __future__ import annotations

import os

import httpx

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


def test_the_answer_is_kept_a_while_and_looked_for_again_when_its_process_is_gone() -> None:
    now = [0.0]
    answers = [Found(pid=os.getpid()), Found(unreadable="it runs as another user"), Found()]
    asked: list[int] = []

    def find(port: int) -> Found:
        asked.append(port)
        return answers[len(asked) - 1]

    listener = Listener(11434, find=find, clock=lambda: now[0])
    assert listener.current().pid == os.getpid()
    now[0] = RECHECK_S / 2
    assert listener.current().pid == os.getpid() and asked == [11434]  # kept
    now[0] = RECHECK_S
    assert listener.current().unreadable == "it runs as another user"
    now[0] = RECHECK_S * 2
    assert listener.current() == Found() and len(asked) == 3
