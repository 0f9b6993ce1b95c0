"""Identical requests in flight at once make one upstream call: the others follow it (``X-Cache: SHARED``).

The fake Ollama holds its answers (``hang``) or paces its stream (``chunk_delay_ms``) so the requests
overlap for certain; the tests wait on the proxy's own count of followers, never on a sleep.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import ollama
import pytest

from core.http.flight import Flights
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, wait_for

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": False}
STREAMED = {**CHAT, "stream": True}


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def flights(proxy: RunningProxy) -> Flights:
    assert proxy.server is not None
    return proxy.server.engine.proxy.flights


def post(proxy: RunningProxy, body: dict[str, Any], path: str = "/api/chat") -> httpx.Response:
    return httpx.post(proxy.url + path, json=body, timeout=30)


def raw_request(proxy: RunningProxy, body: dict[str, Any], path: str = "/api/chat") -> socket.socket:
    """A client that sent its request over its own socket and may leave at any moment (close the socket)."""
    address = urlsplit(proxy.url)
    data = json.dumps(body).encode()
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: "
        + address.netloc.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(data)).encode()
        + b"\r\n\r\n"
        + data
    )
    return sock


def hold_then_gather(
    proxy: RunningProxy,
    fake: FakeOllama,
    pool: ThreadPoolExecutor,
    body: dict[str, Any],
    followers: int,
    path: str = "/api/chat",
) -> list[httpx.Response]:
    """The leader's request reaches the held fake, ``followers`` identical ones join it, then the fake answers."""
    fake.configure(hang=True)
    leader = pool.submit(post, proxy, body, path)
    assert fake.wait_for_calls(1, path)
    others = [pool.submit(post, proxy, body, path) for _ in range(followers)]
    wait_for(lambda: flights(proxy).following() == followers, f"{followers} requests following the first")
    fake.configure(hang=False)
    return [future.result() for future in (leader, *others)]


def test_identical_requests_in_flight_make_one_upstream_call_and_share_its_answer(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    answers = hold_then_gather(proxy, fake, pool, CHAT, followers=5)

    assert fake.total_calls("/api/chat") == 1
    assert [a.headers["x-cache"] for a in answers] == ["MISS"] + ["SHARED"] * 5
    assert all(a.status_code == 200 and a.content == answers[0].content for a in answers)
    assert len({a.headers["x-cache-key"] for a in answers}) == 1
    assert post(proxy, CHAT).headers["x-cache"] == "HIT"  # and the answer was stored once, as any miss
    totals = proxy.stats()["totals"]
    assert (totals["misses"], totals["shared"], totals["hits"]) == (1, 5, 1)  # type: ignore[index]
    assert totals["hit_rate"] == 6 / 7  # type: ignore[index]
    assert (
        totals["tokens_saved"]
        == 6 * answers[0].json()["eval_count"]
        + 6
        * answers[0].json()[  # type: ignore[index]
            "prompt_eval_count"
        ]
    )
    assert totals["time_saved_s"] > 0  # type: ignore[index]


def test_a_client_joining_a_stream_late_gets_the_chunks_so_far_then_the_rest(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(chunk_delay_ms=40, tokens=20)
    with httpx.Client(base_url=proxy.url, timeout=30) as first, httpx.Client(base_url=proxy.url, timeout=30) as late:
        with first.stream("POST", "/api/chat", json=STREAMED) as leading:
            lines = leading.iter_lines()
            seen = [next(lines), next(lines), next(lines)]  # the answer is under way
            with late.stream("POST", "/api/chat", json=STREAMED) as following:
                assert following.headers["x-cache"] == "SHARED"
                followed = list(following.iter_lines())
            seen += list(lines)
    assert followed == seen  # the chunks from before it came, then every one after, in order
    assert json.loads(followed[-1])["done"] is True
    assert fake.total_calls("/api/chat") == 1


def test_a_follower_that_leaves_disturbs_no_one(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(hang=True)
    leader = pool.submit(post, proxy, CHAT)
    assert fake.wait_for_calls(1, "/api/chat")
    staying = pool.submit(post, proxy, CHAT)
    leaving = raw_request(proxy, CHAT)
    wait_for(lambda: flights(proxy).following() == 2, "two requests following the first")
    leaving.close()
    wait_for(lambda: flights(proxy).following() == 1, "the follower that left to be gone")
    fake.configure(hang=False)

    assert leader.result().status_code == staying.result().status_code == 200
    assert staying.result().headers["x-cache"] == "SHARED" and staying.result().content == leader.result().content
    assert proxy.stats()["totals"]["shared"] == 1  # type: ignore[index]


def test_when_the_first_client_leaves_the_call_goes_on_for_the_others_and_is_stored(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(hang=True)
    leaving = raw_request(proxy, CHAT)
    assert fake.wait_for_calls(1, "/api/chat")
    staying = pool.submit(post, proxy, CHAT)
    wait_for(lambda: flights(proxy).following() == 1, "a request following the first")
    leaving.close()
    wait_for(lambda: flights(proxy).get(staying_key(proxy)).leader_gone, "the first client to be gone")  # type: ignore[union-attr]
    fake.configure(hang=False)

    answer = staying.result()
    assert answer.status_code == 200 and answer.headers["x-cache"] == "SHARED" and answer.json()["done"] is True
    assert post(proxy, CHAT).headers["x-cache"] == "HIT"
    assert fake.total_calls("/api/chat") == 1


def staying_key(proxy: RunningProxy) -> str:
    """The key of the one upstream call under way."""
    (key,) = flights(proxy)._by_key  # noqa: SLF001 - the test's own synchronisation point
    return key


def test_when_every_client_leaves_the_upstream_call_is_cancelled_and_nothing_stored(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(chunk_delay_ms=100, tokens=200)
    first = raw_request(proxy, STREAMED)
    assert first.recv(65536)  # the stream is under way
    second = raw_request(proxy, STREAMED)
    wait_for(lambda: flights(proxy).following() == 1, "a request following the first")
    assert second.recv(65536)  # it got what had come so far
    first.close()
    second.close()

    assert fake.wait_for_abandoned(1)  # the upstream stream was cut: the model stops generating
    wait_for(lambda: len(flights(proxy)) == 0, "no call under way")
    fake.configure(chunk_delay_ms=0, tokens=12)
    assert post(proxy, CHAT).headers["x-cache"] == "MISS"  # nothing partial was stored
    assert fake.total_calls("/api/chat") == 2


def test_an_error_answer_is_shared_counted_as_errors_and_never_stored(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(fail_status=500, fail_count=1)
    answers = hold_then_gather(proxy, fake, pool, CHAT, followers=3)

    assert [a.status_code for a in answers] == [500] * 4
    assert all("llama runner process has terminated" in a.json()["error"] for a in answers)
    totals = proxy.stats()["totals"]
    assert (totals["errors"], totals["shared"], totals["time_saved_s"]) == (4, 0, 0.0)  # type: ignore[index]
    assert post(proxy, CHAT).headers["x-cache"] == "MISS"


def test_openai_streams_are_shared_too(proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    answers = hold_then_gather(proxy, fake, pool, body, followers=3, path="/v1/chat/completions")

    assert [a.headers["x-cache"] for a in answers] == ["MISS"] + ["SHARED"] * 3
    assert all(a.text == answers[0].text and a.text.rstrip().endswith("data: [DONE]") for a in answers)
    assert fake.total_calls("/v1/chat/completions") == 1


def test_the_official_client_sent_many_times_at_once_causes_one_generation(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(hang=True)
    messages = CHAT["messages"]
    with ollama.Client(host=proxy.url) as client:
        futures: list[Future[Any]] = [pool.submit(client.chat, model="llama3.2", messages=messages)]
        assert fake.wait_for_calls(1, "/api/chat")
        futures += [pool.submit(client.chat, model="llama3.2", messages=messages) for _ in range(7)]
        wait_for(lambda: flights(proxy).following() == 7, "seven requests following the first")
        fake.configure(hang=False)
        contents = {future.result().message.content for future in futures}
    assert len(contents) == 1 and contents != {""}
    assert fake.total_calls("/api/chat") == 1


def test_a_streamed_and_a_whole_request_share_one_upstream_call(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(hang=True)
    streamed = pool.submit(post, proxy, STREAMED)
    assert fake.wait_for_calls(1, "/api/chat")
    whole = pool.submit(post, proxy, CHAT)
    wait_for(lambda: flights(proxy).following() == 1, "the whole request following the stream")
    fake.configure(hang=False)

    lines = [json.loads(line) for line in streamed.result().text.splitlines()]
    answer = whole.result()
    assert answer.headers["x-cache"] == "SHARED" and answer.headers["content-type"].startswith("application/json")
    merged = answer.json()
    assert merged["message"]["content"] == "".join(line["message"]["content"] for line in lines)
    assert merged["done"] is True and merged["eval_count"] == lines[-1]["eval_count"]
    assert fake.total_calls("/api/chat") == 1


def test_a_streamed_request_following_a_whole_one_gets_a_stream(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    fake.configure(hang=True)
    whole = pool.submit(post, proxy, CHAT)
    assert fake.wait_for_calls(1, "/api/chat")
    with ollama.Client(host=proxy.url) as client:
        chunks = pool.submit(lambda: list(client.chat(model="llama3.2", messages=CHAT["messages"], stream=True)))
        wait_for(lambda: flights(proxy).following() == 1, "the stream following the whole request")
        fake.configure(hang=False)
        parts = chunks.result()
    assert "".join(part.message.content or "" for part in parts) == whole.result().json()["message"]["content"]
    assert parts[-1].done and parts[-1].eval_count == whole.result().json()["eval_count"]
    assert fake.total_calls("/api/chat") == 1


def test_a_whole_openai_request_follows_a_stream_in_flight_that_did_not_ask_for_usage(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor
) -> None:
    """The proxy asks the upstream for the usage of the stream it records, so a whole request can follow it;
    the streaming client, which did not ask, gets no usage chunk."""
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    fake.configure(chunk_delay_ms=50)
    with httpx.Client(base_url=proxy.url, timeout=30) as http:  # noqa: SIM117 - the stream stays open
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as streaming:
            lines = streaming.iter_lines()
            first = next(lines)  # under way
            whole = httpx.post(proxy.url + "/v1/chat/completions", json=body, timeout=30)
            streamed = [first, *lines]
    assert whole.headers["x-cache"] == "SHARED" and whole.json()["usage"]["completion_tokens"] > 0
    assert fake.total_calls("/v1/chat/completions") == 1
    assert fake.received("/v1/chat/completions")[0]["stream_options"] == {"include_usage": True}
    assert streamed[-2] == "data: [DONE]" or streamed[-1] == "data: [DONE]"
    assert not any('"usage"' in line for line in streamed)
