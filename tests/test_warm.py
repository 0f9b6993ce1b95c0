"""Warming the cache: the engine's job sends a list through the proxy, skips what is cached, counts and
reports failures, keeps to its concurrency; ``/-/warm`` starts it (token, 409, 400) and tells its progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from core.control.client import ControlClient, ControlError
from core.control.warm import WarmError, parse_lines
from tests.fakes.ollama_server import FakeOllama, serve_in_thread
from tests.harness import RunningProxy, events_until, proxy_in_thread, wait_for


def chat(text: str, model: str = "llama3.2") -> dict[str, Any]:
    return {"endpoint": "/api/chat", "body": {"model": model, "messages": [{"role": "user", "content": text}]}}


def mixed(count: int) -> list[dict[str, Any]]:
    """``count`` distinct requests over chat, generate, embed and the OpenAI chat route."""
    items = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            items.append(chat(f"question {n}"))
        elif kind == 1:
            items.append({"endpoint": "/api/generate", "body": {"model": "qwen3:0.6b", "prompt": f"go {n}"}})
        elif kind == 2:
            items.append({"endpoint": "/api/embed", "body": {"model": "nomic-embed-text", "input": f"text {n}"}})
        else:
            items.append(
                {
                    "endpoint": "/v1/chat/completions",
                    "body": {"model": "llama3.2", "messages": [{"role": "user", "content": f"v1 {n}"}]},
                }
            )
    return items


def warm(proxy: RunningProxy, items: list[dict[str, Any]], concurrency: int = 4) -> dict[str, Any]:
    """Start a warm-up and wait for its end; the final status."""
    with ControlClient(proxy.url, proxy.token) as client:
        client.warm_start(items, concurrency)  # type: ignore[arg-type]
        return wait_for(lambda: (s := client.warm_status())["state"] == "done" and s, "the warm-up to end")


def test_each_request_is_sent_once_and_a_second_run_finds_them_all_cached(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    items = mixed(12)
    first = warm(proxy, items)
    assert (first["total"], first["sent"], first["cached"], first["failed"]) == (12, 12, 0, 0)
    assert fake.total_calls() - fake.total_calls("/api/tags") - fake.total_calls("/api/version") == 12
    calls = fake.total_calls()
    second = warm(proxy, items)
    assert (second["sent"], second["cached"], second["failed"]) == (0, 12, 0)
    assert fake.total_calls() == calls  # nothing was sent for what was cached
    # the warm-up's requests went through the proxy like any client's, and are answered from the cache
    with proxy.client() as client:
        answer = client.post("/api/chat", json=items[0]["body"])
    assert answer.headers["x-cache"] == "HIT"


def test_a_failing_request_is_counted_with_the_upstreams_reason(proxy: RunningProxy, fake: FakeOllama) -> None:
    items = [chat("fine"), chat("no such model", model="nonexistent:1b"), chat("fine too")]
    status = warm(proxy, items)
    assert (status["sent"], status["failed"]) == (2, 1)
    [failure] = status["failures"]
    assert failure["index"] == 1 and failure["model"] == "nonexistent:1b"
    assert failure["error"].startswith("HTTP 404: ") and "nonexistent" in failure["error"]


def test_an_upstream_error_fails_its_request_and_is_not_cached(proxy: RunningProxy, fake: FakeOllama) -> None:
    fake.configure(fail_status=500, fail_message="llama runner process has terminated: exit status 2")
    status = warm(proxy, [chat("once")])
    assert status["failed"] == 1
    assert status["failures"][0]["error"] == "HTTP 500: llama runner process has terminated: exit status 2"
    fake.configure(fail_status=None)
    assert warm(proxy, [chat("once")])["sent"] == 1  # the failure left nothing in the cache


class Concurrency:
    """An ASGI wrapper around the fake that counts the inference requests it answers at once. With ``hold``
    set, each waits (on a condition, within a bound) until ``hold`` are in flight or ``total`` have arrived, so
    that the most in flight is what the client allows, not what a loaded machine's timing happens to give."""

    def __init__(self, fake: FakeOllama) -> None:
        self.app = fake.app
        self.now = self.most = self.arrived = 0
        self.hold, self.total = 0, 0
        self.changed = asyncio.Condition()  # every request runs on the fake's one event loop

    def _released(self) -> bool:
        return not self.hold or self.now >= self.hold or self.arrived >= self.total

    async def _count(self, change: int) -> None:
        async with self.changed:
            self.now += change
            if change > 0:
                self.arrived += 1
                self.most = max(self.most, self.now)
            self.changed.notify_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = scope["type"] == "http" and scope["path"] in ("/api/chat", "/api/generate")
        if not counted:
            await self.app(scope, receive, send)
            return
        await self._count(+1)
        async with self.changed:
            with contextlib.suppress(TimeoutError):  # a bound, should the client never send enough
                await asyncio.wait_for(self.changed.wait_for(self._released), 10)
        answering = True

        async def counting(message: MutableMapping[str, Any]) -> None:
            nonlocal answering
            # the answer ends with its last byte sent: the client may send its next request before this
            # app returns, so that is when this one stops counting
            if answering and message["type"] == "http.response.body" and not message.get("more_body"):
                answering = False
                await self._count(-1)
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            if answering:
                await self._count(-1)


@pytest.fixture
def counted() -> Iterator[tuple[Concurrency, RunningProxy]]:
    fake = FakeOllama(first_byte_delay_ms=150, chunk_delay_ms=20)
    concurrency = Concurrency(fake)
    fake.app = concurrency
    with serve_in_thread(fake) as (_, url), proxy_in_thread(url) as proxy:
        yield concurrency, proxy


def test_no_more_requests_than_the_concurrency_reach_the_upstream_at_once(
    counted: tuple[Concurrency, RunningProxy],
) -> None:
    concurrency, proxy = counted
    concurrency.hold, concurrency.total = 3, 8  # answers wait until three are in flight (or all have come)
    status = warm(proxy, [chat(f"q{n}") for n in range(8)], concurrency=3)
    assert status["sent"] == 8
    assert concurrency.most == 3  # three at a time, never more


def test_progress_goes_out_on_the_event_feed_and_ends_with_the_totals(
    counted: tuple[Concurrency, RunningProxy],
) -> None:
    _, proxy = counted
    items = [chat(f"e{n}") for n in range(6)]

    def warm_up() -> None:
        with ControlClient(proxy.url, proxy.token) as client:
            client.warm_start(items, 2)  # type: ignore[arg-type]

    seen = events_until(
        proxy.url, warm_up, lambda name: name.startswith("warm_did_"), lambda told: told[-1][0] == "warm_did_finish"
    )
    progress = [payload for name, payload in seen if name == "warm_did_progress"]
    assert progress and [p["sent"] for p in progress] == sorted(p["sent"] for p in progress)
    assert seen[-1][1]["sent"] == 6 and seen[-1][1]["state"] == "done"


def test_the_api_needs_the_token_refuses_a_second_run_and_names_a_bad_item(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    body = {"requests": [chat("a")], "concurrency": 2}
    assert httpx.post(proxy.url + "/-/warm", json=body).status_code == 401
    assert httpx.get(proxy.url + "/-/warm").json() == {"state": "idle", "failures": []}
    fake.configure(hang=True)  # the first warm-up waits on the upstream
    started = httpx.post(proxy.url + "/-/warm", json=body, headers=proxy.auth)
    assert started.status_code == 202 and started.json()["state"] == "running"
    again = httpx.post(proxy.url + "/-/warm", json=body, headers=proxy.auth)
    assert again.status_code == 409 and "already running" in again.json()["error"]
    fake.configure(hang=False)
    bad = [chat("ok"), {"endpoint": "/api/tags", "body": {}}]
    refused = httpx.post(proxy.url + "/-/warm", json={"requests": bad}, headers=proxy.auth)
    assert refused.status_code == 400 and refused.json()["error"].startswith("requests[1]: the endpoint")
    for item, said in [
        ("text", "requests[0]: expected an object"),
        ({"endpoint": "/api/chat", "body": "hi"}, "requests[0]: the body for /api/chat must be"),
        (
            {"endpoint": "/api/chat", "body": {"messages": []}},
            "requests[0]: the body for /api/chat cannot be cached: the request has no model",
        ),
    ]:
        answer = httpx.post(proxy.url + "/-/warm", json={"requests": [item]}, headers=proxy.auth)
        assert answer.status_code == 400 and answer.json()["error"].startswith(said), answer.text
    for concurrency in (0, 65, "4", True):
        answer = httpx.post(proxy.url + "/-/warm", json={**body, "concurrency": concurrency}, headers=proxy.auth)
        assert answer.status_code == 400 and "concurrency" in answer.json()["error"]
    assert httpx.post(proxy.url + "/-/warm", json={"requests": []}, headers=proxy.auth).status_code == 400


def test_a_paused_cache_refuses_to_warm(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        client.pause()
        with pytest.raises(ControlError, match="caching is paused") as refused:
            client.warm_start([chat("a")])  # type: ignore[list-item]
    assert refused.value.status == 409


def test_a_file_is_checked_whole_and_a_bad_line_is_named() -> None:
    good = '{"endpoint": "/api/chat", "body": {"model": "llama3.2", "messages": []}}'
    parsed = parse_lines([good, "", good], "f.jsonl")
    assert parsed.lines == [1, 3] and len(parsed.items) == 2
    with pytest.raises(WarmError, match=r"^f.jsonl line 2: not JSON"):
        parse_lines([good, "{oops", good], "f.jsonl")
    with pytest.raises(WarmError, match=r"^f.jsonl line 3: the endpoint must be one of the cached routes"):
        parse_lines([good, "", '{"endpoint": "/api/pull", "body": {}}'], "f.jsonl")
    with pytest.raises(WarmError, match="holds no requests"):
        parse_lines(["", "  "], "f.jsonl")


def test_a_stream_the_upstream_breaks_off_is_a_failure_and_stores_nothing(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    fake.configure(drop_after_chunks=2)
    status = warm(proxy, [chat("streamed")])  # /api/chat streams when "stream" is absent
    assert status["failed"] == 1
    assert status["failures"][0]["error"].startswith("the stream ended with an error: ")
    fake.configure(drop_after_chunks=None)
    assert warm(proxy, [chat("streamed")])["sent"] == 1


def test_the_sample_file_is_a_valid_warm_up_file() -> None:
    from core.control.warm import read_file
    from tests.harness import ROOT

    sample = read_file(ROOT / "resources" / "warm-sample.jsonl")
    assert {item["endpoint"] for item in sample.items} >= {"/api/chat", "/api/generate", "/api/embed"}
