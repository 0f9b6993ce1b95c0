"""Every cache feature works on Anthropic's Messages API and OpenAI's Responses API as it does on the other routes.

For ``POST /v1/messages`` and ``POST /v1/responses``: identical requests in flight share one upstream call (in
both stream modes, and across them), ``Cache-Control`` refreshes, skips and refuses (a 504 in the route's own error
shape), ``X-Cache-Namespace`` keeps entries apart, ``X-Cache-TTL`` and ``cache.ttl`` give entries their lifetime,
offline replay serves hits and refuses the rest in the route's shape, ``/-/explain`` and ``ollacache explain``
name what differs (never ``cache_control`` markers, ``metadata`` or storage fields) and take ``x-api-key``,
warm-ups send items of both routes, ``ollacache export`` and ``import`` move their entries, and ``/-/stats`` and
``/-/metrics`` count them per route and per client.

Read through the official ``anthropic`` and ``openai`` clients where a tool would use them, httpx elsewhere. The
fake Ollama is held (``hang``) so that requests overlap for certain; every wait is on a condition (the proxy's
count of followers, the fake's count of calls, the store, the clock passing an entry's expiry), never a sleep.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.control.client import ControlClient
from core.http.flight import Flights
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, RunningProxy, proxy_in_thread, wait_for

MESSAGES, RESPONSES = "/v1/messages", "/v1/responses"
QUESTION = "Why is the sky blue?"
ZERO: Any = {"temperature": 0}  # the fake's answers repeat only at temperature 0
ENDS = {MESSAGES: "message_stop", RESPONSES: "response.completed"}  # the event a whole stream ends with
FAILED = "llama runner process has terminated: exit status 2"  # the fake's failure message
both = pytest.mark.parametrize("path", [MESSAGES, RESPONSES], ids=["messages", "responses"])
T = TypeVar("T")


def body_for(path: str, text: str = QUESTION, **more: Any) -> dict[str, Any]:
    """A deterministic request on ``path`` asking ``text``, as the official clients send it."""
    if path == MESSAGES:
        body = {"model": "llama3.2", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
    else:
        body = {"model": "llama3.2", "input": text}
    return {**body, **ZERO, **more}


def events(text: str) -> list[dict[str, Any]]:
    """The data of each event of an SSE stream."""
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines() if line.startswith("data: ")]


def said(path: str, answer: dict[str, Any]) -> str:
    """The text a whole answer says."""
    if path == MESSAGES:
        return "".join(block.get("text", "") for block in answer.get("content") or [] if block["type"] == "text")
    return "".join(
        part["text"]
        for item in answer["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def streamed_said(path: str, text: str) -> str:
    """The text a stream says, checked to end as a whole stream of its API does."""
    data = events(text)
    assert data[-1]["type"] == ENDS[path]
    if path == MESSAGES:
        return "".join(event["delta"].get("text", "") for event in data if event["type"] == "content_block_delta")
    return said(path, data[-1]["response"])


def error_message(path: str, answer: httpx.Response) -> str:
    """The message of a whole error answer, checked to be in the route's own shape: Anthropic's
    ``{"type": "error", "error": {...}}`` on /v1/messages, OpenAI's ``{"error": {...}}`` on /v1/responses."""
    assert answer.headers["content-type"].startswith("application/json")
    data = answer.json()
    if path == MESSAGES:
        assert data["type"] == "error" and {"type", "message"} <= set(data["error"]), data
    else:
        assert set(data) == {"error"} and {"type", "message"} <= set(data["error"]), data
    message = data["error"]["message"]
    assert isinstance(message, str)
    return message


@dataclass
class Said:
    """What a user of an official client sees of one answer: its headers, its text, the stream's event types."""

    cache: str
    key: str
    text: str
    kinds: list[str] = field(default_factory=list)


def ask(
    proxy: RunningProxy,
    path: str,
    text: str = QUESTION,
    *,
    stream: bool = False,
    headers: dict[str, str] | None = None,
    api_key: str = "ollama",
) -> Said:
    """Ask ``text`` on ``path`` through the official client of its API (deterministic), whole or streamed."""
    if path == MESSAGES:
        with anthropic.Anthropic(
            base_url=proxy.url, api_key=api_key, max_retries=0, default_headers=headers or {}
        ) as claude:
            raw = claude.messages.with_raw_response.create(
                model="llama3.2",
                max_tokens=100,
                messages=[{"role": "user", "content": text}],
                stream=stream,
                extra_body=ZERO,
            )
            cache, key = raw.headers["x-cache"], raw.headers["x-cache-key"]
            if not stream:
                message = raw.parse()
                return Said(cache, key, "".join(block.text for block in message.content if block.type == "text"))
            kinds, parts = [], []
            for event in raw.parse():
                kinds.append(event.type)
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
            return Said(cache, key, "".join(parts), kinds)
    with openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=api_key, max_retries=0, default_headers=headers or {}
    ) as oai:
        answer = oai.responses.with_raw_response.create(model="llama3.2", input=text, temperature=0, stream=stream)
        cache, key = answer.headers["x-cache"], answer.headers["x-cache-key"]
        if not stream:
            return Said(cache, key, answer.parse().output_text)
        kinds, final = [], ""
        for event in answer.parse():
            kinds.append(event.type)
            if event.type == "response.completed":
                final = event.response.output_text
        return Said(cache, key, final, kinds)


def post(proxy: RunningProxy, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(proxy.url + path, json=body, headers=headers or {}, timeout=30)


def stored(proxy: RunningProxy, count: int) -> list[dict[str, Any]]:
    """The entries of ``/-/entries`` once the store holds ``count`` of them."""
    with proxy.client() as http:
        return wait_for(
            lambda: len(found := http.get("/-/entries").json()["entries"]) == count and found,
            f"{count} entries in the store",
        )


def settled(read: Callable[[], T], expected: T, what: str) -> None:
    """``read()`` comes to equal ``expected`` (a request's account is kept just after its answer is sent)."""
    try:
        wait_for(lambda: read() == expected, what)
    except AssertionError:
        pass
    assert read() == expected


# --- coalescing -------------------------------------------------------------------------------------------------


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def flights(proxy: RunningProxy) -> Flights:
    assert proxy.server is not None
    return proxy.server.engine.proxy.flights


def overlapping(
    proxy: RunningProxy,
    fake: FakeOllama,
    pool: ThreadPoolExecutor,
    path: str,
    first: Callable[[], T],
    *others: Callable[[], T],
) -> list[T]:
    """``first()`` reaches the held fake, each of ``others`` follows it, then the fake answers: their results."""
    fake.configure(hang=True)
    try:
        leading = pool.submit(first)
        assert fake.wait_for_calls(1, path)
        following = [pool.submit(other) for other in others]
        wait_for(lambda: flights(proxy).following() == len(others), f"{len(others)} requests following the first")
    finally:
        fake.configure(hang=False)
    return [future.result() for future in (leading, *following)]


@both
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_identical_requests_in_flight_make_one_upstream_call(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor, path: str, stream: bool
) -> None:
    body = body_for(path, stream=stream)
    answers = overlapping(proxy, fake, pool, path, *[partial(post, proxy, path, body)] * 5)

    assert [a.headers["x-cache"] for a in answers] == ["MISS"] + ["SHARED"] * 4
    assert all(a.status_code == 200 and a.content == answers[0].content for a in answers)
    assert len({a.headers["x-cache-key"] for a in answers}) == 1
    if stream:
        assert answers[0].headers["content-type"].startswith("text/event-stream")
        assert streamed_said(path, answers[0].text) != ""
    else:
        assert said(path, answers[0].json()) != ""
    assert fake.total_calls(path) == 1
    assert post(proxy, path, body).headers["x-cache"] == "HIT"  # and the answer was stored, as any miss's
    settled(
        lambda: {k: proxy.stats()["by_route"][path][k] for k in ("misses", "shared", "hits")},  # type: ignore[index]
        {"misses": 1, "shared": 4, "hits": 1},
        "the shared answers counted on the route",
    )
    assert proxy.stats()["by_route"][path]["tokens_saved"] > 0  # type: ignore[index]


@both
def test_a_whole_request_following_a_stream_gets_the_stream_merged(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor, path: str
) -> None:
    body = body_for(path)
    streamed, whole = overlapping(
        proxy, fake, pool, path, partial(post, proxy, path, {**body, "stream": True}), partial(post, proxy, path, body)
    )

    assert (streamed.headers["x-cache"], whole.headers["x-cache"]) == ("MISS", "SHARED")
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("application/json")
    assert said(path, whole.json()) == streamed_said(path, streamed.text) != ""
    assert fake.total_calls(path) == 1


@both
def test_a_stream_following_a_whole_request_is_read_by_the_official_client(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor, path: str
) -> None:
    whole, streamed = overlapping(
        proxy,
        fake,
        pool,
        path,
        partial(ask, proxy, path),
        partial(ask, proxy, path, stream=True),
    )

    assert (whole.cache, streamed.cache) == ("MISS", "SHARED") and whole.key == streamed.key
    assert streamed.text == whole.text != "" and streamed.kinds[-1] == ENDS[path]
    assert fake.total_calls(path) == 1


@both
def test_the_official_client_sent_many_times_at_once_in_both_modes_causes_one_generation(
    proxy: RunningProxy, fake: FakeOllama, pool: ThreadPoolExecutor, path: str
) -> None:
    others = [partial(ask, proxy, path, stream=n % 2 == 0) for n in range(6)]
    answers = overlapping(proxy, fake, pool, path, partial(ask, proxy, path), *others)

    assert [a.cache for a in answers] == ["MISS"] + ["SHARED"] * 6
    assert {a.text for a in answers} == {answers[0].text} != {""}
    assert all(a.kinds[-1] == ENDS[path] for a in answers if a.kinds)
    assert fake.total_calls(path) == 1


# --- Cache-Control ----------------------------------------------------------------------------------------------


@both
def test_no_cache_asks_again_and_its_answer_replaces_the_stored_one(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    body = body_for(path)
    with proxy.client() as http:
        first = http.post(path, json=body)
        fake.configure(tokens=3)  # the model answers differently now
        refreshed = http.post(path, json=body, headers={"Cache-Control": "no-cache"})
        again = http.post(path, json={**body, "stream": True})
    assert [a.headers["x-cache"] for a in (first, refreshed, again)] == ["MISS", "REFRESH", "HIT"]
    assert said(path, refreshed.json()) != said(path, first.json())
    assert streamed_said(path, again.text) == said(path, refreshed.json())  # the new answer, in both modes
    assert fake.total_calls(path) == 2
    assert len(stored(proxy, 1)) == 1


@both
def test_no_store_passes_through_and_keeps_nothing(proxy: RunningProxy, fake: FakeOllama, path: str) -> None:
    body = body_for(path)
    with proxy.client() as http:
        skipped = [http.post(path, json=body, headers={"Cache-Control": "no-store"}) for _ in range(2)]
        after = http.post(path, json=body)
    assert [a.status_code for a in skipped] == [200, 200] and said(path, skipped[0].json()) != ""
    assert [a.headers["x-cache"] for a in (*skipped, after)] == ["BYPASS", "BYPASS", "MISS"]  # nothing was stored
    assert fake.total_calls(path) == 3


@both
def test_only_if_cached_is_a_504_in_the_routes_own_error_shape(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    only = {"Cache-Control": "only-if-cached"}
    with proxy.client() as http:
        for stream in (False, True):
            refused = http.post(path, json=body_for(path, stream=stream), headers=only)
            assert refused.status_code == 504 and refused.headers["x-cache"] == "MISS"
            assert "only-if-cached" in error_message(path, refused)
        assert fake.total_calls(path) == 0
        assert http.post(path, json=body_for(path)).headers["x-cache"] == "MISS"
        for stream in (False, True):
            hit = http.post(path, json=body_for(path, stream=stream), headers=only)
            assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
    assert fake.total_calls(path) == 1


def test_the_official_clients_read_the_only_if_cached_refusal(proxy: RunningProxy, fake: FakeOllama) -> None:
    only = {"Cache-Control": "only-if-cached"}
    with pytest.raises(anthropic.APIStatusError) as refused:
        ask(proxy, MESSAGES, headers=only)
    assert refused.value.status_code == 504 and "only-if-cached" in refused.value.message
    assert refused.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as failed:
        ask(proxy, RESPONSES, stream=True, headers=only)
    assert failed.value.status_code == 504 and "only-if-cached" in failed.value.message
    assert fake.total_calls(MESSAGES) == fake.total_calls(RESPONSES) == 0


# --- namespaces -------------------------------------------------------------------------------------------------


@both
def test_namespaces_keep_the_same_request_apart(proxy: RunningProxy, fake: FakeOllama, path: str) -> None:
    def asked(namespace: str | None, stream: bool = False) -> Said:
        return ask(proxy, path, stream=stream, headers={"X-Cache-Namespace": namespace} if namespace else None)

    first = [asked("team-a"), asked("team-b"), asked(None)]
    assert [a.cache for a in first] == ["MISS"] * 3 and len({a.key for a in first}) == 3
    again = [asked("team-a", stream=True), asked("team-b"), asked(None, stream=True)]
    assert [a.cache for a in again] == ["HIT"] * 3
    assert [a.key for a in again] == [a.key for a in first] and [a.text for a in again] == [a.text for a in first]
    assert fake.total_calls(path) == 3

    refused = post(proxy, path, body_for(path), {"X-Cache-Namespace": "a/b"})
    assert refused.status_code == 400 and "bad X-Cache-Namespace header" in error_message(path, refused)
    assert fake.total_calls(path) == 3


# --- lifetimes --------------------------------------------------------------------------------------------------


@both
def test_x_cache_ttl_gives_an_entry_its_own_lifetime_after_which_it_is_asked_again(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    short, long = body_for(path, "A short-lived question"), body_for(path, "A long-lived question")
    with proxy.client() as http:
        kept = http.post(path, json=long, headers={"X-Cache-TTL": "90"})
        brief = http.post(path, json=short, headers={"X-Cache-TTL": "1"})
        assert (kept.headers["x-cache"], brief.headers["x-cache"]) == ("MISS", "MISS")
        entries = {entry["key"]: entry for entry in stored(proxy, 2)}
        assert {entry["route"] for entry in entries.values()} == {path}
        lifetimes = {key: entry["expires"] - entry["created"] for key, entry in entries.items()}
        assert lifetimes == {
            kept.headers["x-cache-key"]: pytest.approx(90, abs=0.01),  # not cache.ttl's 30 days
            brief.headers["x-cache-key"]: pytest.approx(1, abs=0.01),
        }
        expires = entries[brief.headers["x-cache-key"]]["expires"]
        wait_for(lambda: time.time() >= expires, "the short entry's lifetime to pass")
        assert http.post(path, json=short).headers["x-cache"] == "MISS"
        assert http.post(path, json={**long, "stream": True}).headers["x-cache"] == "HIT"
    assert fake.total_calls(path) == 3


def test_the_cache_ttl_setting_gives_entries_of_both_routes_their_lifetime(upstream: tuple[FakeOllama, str]) -> None:
    _, url = upstream
    with proxy_in_thread(url, **{"cache.ttl": "1h"}) as proxy:
        assert [ask(proxy, path).cache for path in (MESSAGES, RESPONSES)] == ["MISS", "MISS"]
        entries = stored(proxy, 2)
    assert sorted(entry["route"] for entry in entries) == [MESSAGES, RESPONSES]
    assert [entry["expires"] - entry["created"] for entry in entries] == [pytest.approx(3600, abs=0.01)] * 2


# --- offline replay ---------------------------------------------------------------------------------------------


def test_offline_serves_hits_of_both_routes_and_refuses_the_rest_in_their_shapes(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    with proxy_in_thread(url) as online:
        recorded = {path: ask(online, path) for path in (MESSAGES, RESPONSES)}
        stored(online, 2)
    fake.reset()
    with proxy_in_thread(url, **{"proxy.offline": "true"}) as offline, offline.client() as http:
        for path in (MESSAGES, RESPONSES):
            for stream in (False, True):
                hit = ask(offline, path, stream=stream)
                assert (hit.cache, hit.key, hit.text) == ("HIT", recorded[path].key, recorded[path].text)
            miss = http.post(path, json=body_for(path, "Never asked before"))
            assert miss.status_code == 504 and miss.headers["x-cache"] == "MISS" and "x-cache-key" in miss.headers
            message = error_message(path, miss)
            assert "offline" in message and "not cached" in message
            # what would otherwise reach Ollama is refused the same way
            for headers in ({"Cache-Control": "no-cache"}, {"Cache-Control": "no-store"}):
                refused = http.post(path, json=body_for(path), headers=headers)
                assert refused.status_code == 504 and "offline" in error_message(path, refused)
            unkeyable = http.post(path, json={"messages": [], "input": "no model"})
            assert unkeyable.status_code == 504 and "offline" in error_message(path, unkeyable)
        continued = http.post(RESPONSES, json=body_for(RESPONSES, previous_response_id="resp_1"))
        assert continued.status_code == 504 and "offline" in error_message(RESPONSES, continued)
        with pytest.raises(anthropic.APIStatusError) as refused_message:
            ask(offline, MESSAGES, "Never asked before", stream=True)
        with pytest.raises(openai.APIStatusError) as refused_response:
            ask(offline, RESPONSES, "Never asked before")
    assert refused_message.value.status_code == refused_response.value.status_code == 504
    assert "offline" in refused_message.value.message and "offline" in refused_response.value.message
    assert fake.total_calls() == 0


# --- explain ----------------------------------------------------------------------------------------------------


def explain(proxy: RunningProxy, payload: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(proxy.url + "/-/explain", json=payload, headers=proxy.auth, timeout=30)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


MARKED = {"type": "ephemeral"}
STORED_MESSAGE = body_for(
    MESSAGES,
    system=[{"type": "text", "text": "Be brief.", "cache_control": MARKED}],
    messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION, "cache_control": MARKED}]}],
    metadata={"user_id": "alice"},
)
ASKED_MESSAGE = body_for(
    MESSAGES,
    system=[{"type": "text", "text": "Be brief."}],
    messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
    metadata={"user_id": "bob"},
    temperature=0.5,
)
STORED_RESPONSE = body_for(RESPONSES, instructions="Be brief.", store=True, metadata={"run": "1"}, user="alice")
ASKED_RESPONSE = body_for(
    RESPONSES,
    instructions="Be long.",
    store=False,
    metadata={"run": "2"},
    user="bob",
    prompt_cache_key="k",
    safety_identifier="s",
)


@pytest.mark.parametrize(
    ("path", "kept", "asked", "differs"),
    [
        (MESSAGES, STORED_MESSAGE, ASKED_MESSAGE, {"path": "temperature", "stored": 0, "requested": 0.5}),
        (
            RESPONSES,
            STORED_RESPONSE,
            ASKED_RESPONSE,
            {"path": "instructions", "stored": "Be brief.", "requested": "Be long."},
        ),
    ],
    ids=["messages", "responses"],
)
def test_explain_names_only_the_fields_that_change_the_answer(
    proxy: RunningProxy, fake: FakeOllama, path: str, kept: dict[str, Any], asked: dict[str, Any], differs: Any
) -> None:
    miss = post(proxy, path, kept)
    assert miss.headers["x-cache"] == "MISS"
    stored(proxy, 1)
    found = explain(proxy, {"endpoint": path, "body": asked})
    assert found["cached"] is False and found["endpoint"] == path and found["model"] == "llama3.2:latest"
    [nearest] = found["nearest"]
    assert nearest["key"] == miss.headers["x-cache-key"] and nearest["differences"] == [differs]
    canonical = json.dumps(found["canonical"])
    assert all(name not in canonical for name in ("cache_control", "metadata", "store", "safety_identifier"))
    assert post(proxy, path, asked).headers["x-cache-key"] == found["key"]  # the key is the proxy's
    same = {**asked, differs["path"]: differs["stored"]}  # only markers, metadata and storage fields differ now
    found = explain(proxy, {"endpoint": path, "body": same})
    assert found["cached"] is True and found["key"] == miss.headers["x-cache-key"]
    assert fake.total_calls(path) == 2  # explaining called no one


def test_explain_takes_the_x_api_key_that_keeps_anthropic_entries_apart(proxy: RunningProxy) -> None:
    # Anthropic's API takes its key as x-api-key (curl, agents); the anthropic 2.x SDK sends it as a Bearer token
    keyed = post(proxy, MESSAGES, body_for(MESSAGES), {"x-api-key": "sk-ant-alice"})
    assert keyed.headers["x-cache"] == "MISS"
    sdk = ask(proxy, MESSAGES, api_key="sk-ant-carol")
    assert sdk.cache == "MISS"
    stored(proxy, 2)
    body = body_for(MESSAGES)
    found = explain(proxy, {"endpoint": MESSAGES, "body": body, "headers": {"x-api-key": "sk-ant-alice"}})
    assert found["cached"] is True and found["key"] == keyed.headers["x-cache-key"]
    assert "sk-ant-alice" not in json.dumps(found)  # hashed into the key, never shown
    found = explain(proxy, {"endpoint": MESSAGES, "body": body, "headers": {"Authorization": "Bearer sk-ant-carol"}})
    assert found["cached"] is True and found["key"] == sdk.key
    other = explain(proxy, {"endpoint": MESSAGES, "body": body, "headers": {"X-Api-Key": "sk-ant-bob"}})
    assert other["cached"] is False and other["key"] not in (keyed.headers["x-cache-key"], sdk.key)
    assert [n["differences"] for n in other["nearest"]] == [[], []] and all(n["same_body"] for n in other["nearest"])


def test_explain_names_the_x_api_key_as_what_keeps_a_same_body_apart(proxy: RunningProxy) -> None:
    post(proxy, MESSAGES, body_for(MESSAGES), {"x-api-key": "sk-ant-alice"})
    stored(proxy, 1)
    found = explain(proxy, {"endpoint": MESSAGES, "body": body_for(MESSAGES), "headers": {"x-api-key": "sk-ant-bob"}})
    assert "x-api-key" in found["canonical"]["context"]["credential"]
    assert "x-api-key" in found["nearest"][0]["same_body"]


def run_explain(proxy: RunningProxy, file: Path, request: dict[str, Any]) -> str:
    file.write_text(json.dumps(request))
    result = subprocess.run(
        [sys.executable, "-m", "core", "explain", str(file), "--url", proxy.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_explain_command_on_both_endpoints(proxy: RunningProxy, tmp_path: Path) -> None:
    post(proxy, MESSAGES, body_for(MESSAGES), {"x-api-key": "sk-ant-alice"})
    post(proxy, RESPONSES, STORED_RESPONSE)
    stored(proxy, 2)
    file = tmp_path / "request.json"
    out = run_explain(
        proxy, file, {"endpoint": MESSAGES, "body": body_for(MESSAGES), "headers": {"x-api-key": "sk-ant-alice"}}
    )
    assert f"{MESSAGES}  llama3.2:latest" in out and "cached: a request like this is a HIT" in out
    assert "sk-ant-alice" not in out
    out = run_explain(proxy, file, {"endpoint": RESPONSES, "body": ASKED_RESPONSE})
    assert f"{RESPONSES}  llama3.2:latest" in out and "not cached; the nearest of 1 stored entry" in out
    assert "1 field differs" in out and 'instructions: stored "Be brief.", requested "Be long."' in out
    assert "metadata" not in out.split("canonical", 1)[1]


# --- warm-up ----------------------------------------------------------------------------------------------------


def warm(proxy: RunningProxy, items: list[dict[str, Any]], concurrency: int = 4) -> dict[str, Any]:
    """Start a warm-up through ``POST /-/warm`` and wait for its end; the final status."""
    with ControlClient(proxy.url, proxy.token) as client:
        client.warm_start(items, concurrency)  # type: ignore[arg-type]
        return wait_for(lambda: (s := client.warm_status())["state"] == "done" and s, "the warm-up to end")


def item(path: str, text: str = QUESTION, **more: Any) -> dict[str, Any]:
    return {"endpoint": path, "body": body_for(path, text, **more)}


@pytest.mark.parametrize(
    ("path", "stream"),
    [
        (MESSAGES, False),
        (MESSAGES, True),
        (RESPONSES, False),
        (RESPONSES, True),
    ],
    ids=["messages-whole", "messages-streamed", "responses-whole", "responses-streamed"],
)
def test_a_warmed_item_is_sent_once_then_found_cached_and_answers_both_modes(
    proxy: RunningProxy, fake: FakeOllama, path: str, stream: bool
) -> None:
    warmed = item(path, stream=stream)
    first = warm(proxy, [warmed])
    assert (first["sent"], first["cached"], first["failed"], first["failures"]) == (1, 0, 0, [])
    second = warm(proxy, [warmed])
    assert (second["sent"], second["cached"], second["failed"]) == (0, 1, 0)
    # a warm-up sends no credential, so its entries answer clients that send none (an SDK's key keys its own)
    with proxy.client() as http:
        other = http.post(path, json=body_for(path, stream=not stream))
    assert other.headers["x-cache"] == "HIT"
    assert (streamed_said(path, other.text) if not stream else said(path, other.json())) != ""
    assert fake.total_calls(path) == 1


def test_a_warm_up_of_both_routes_at_once_sends_each_item_once(proxy: RunningProxy, fake: FakeOllama) -> None:
    # a whole /v1/responses item is left out: it is counted as failed (see the test above)
    items = [
        item(MESSAGES, "First question"),
        item(MESSAGES, "Second question", stream=True),
        item(RESPONSES, "First question", stream=True),
        item(RESPONSES, "Second question", stream=True),
    ]
    first = warm(proxy, items)
    assert (first["total"], first["sent"], first["cached"], first["failed"]) == (4, 4, 0, 0)
    assert fake.total_calls(MESSAGES) == fake.total_calls(RESPONSES) == 2
    second = warm(proxy, items)
    assert (second["sent"], second["cached"], second["failed"]) == (0, 4, 0)
    with proxy.client() as http:
        hits = [http.post(each["endpoint"], json=each["body"]).headers["x-cache"] for each in items]
    assert hits == ["HIT"] * 4
    assert fake.total_calls(MESSAGES) == fake.total_calls(RESPONSES) == 2


def test_the_warm_command_reads_a_file_of_both_routes(proxy: RunningProxy, fake: FakeOllama, tmp_path: Path) -> None:
    file = tmp_path / "agents.jsonl"
    file.write_text("".join(json.dumps(each) + "\n" for each in (item(MESSAGES), item(RESPONSES, stream=True))))
    result = subprocess.run(
        [sys.executable, "-m", "core", "warm", str(file), "--url", proxy.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith(": 2 sent, 0 already cached, 0 failed")
    with proxy.client() as http:
        assert [http.post(path, json=body_for(path)).headers["x-cache"] for path in (MESSAGES, RESPONSES)] == [
            "HIT",
            "HIT",
        ]
    assert fake.total_calls(MESSAGES) == fake.total_calls(RESPONSES) == 1


def test_a_warm_up_failure_on_either_route_carries_the_upstreams_reason(proxy: RunningProxy, fake: FakeOllama) -> None:
    fake.configure(fail_status=500)
    status = warm(proxy, [item(MESSAGES), item(RESPONSES, stream=True)])
    assert (status["sent"], status["failed"]) == (0, 2)
    failures = sorted(status["failures"], key=lambda failure: failure["index"])
    assert [(f["endpoint"], f["model"], f["error"]) for f in failures] == [
        (MESSAGES, "llama3.2", f"HTTP 500: {FAILED}"),
        (RESPONSES, "llama3.2", f"HTTP 500: {FAILED}"),
    ]
    fake.configure(fail_status=None)
    assert warm(proxy, [item(MESSAGES), item(RESPONSES, stream=True)])["sent"] == 2  # the failures kept nothing


@pytest.mark.parametrize("path", [MESSAGES, RESPONSES], ids=["messages", "responses"])
def test_a_stream_cut_while_warming_is_a_failure_and_stores_nothing(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    fake.configure(drop_after_chunks=3)
    status = warm(proxy, [item(path, stream=True)])
    assert (status["sent"], status["failed"]) == (0, 1)
    error = status["failures"][0]["error"]
    assert error.startswith("the stream ended with an error: ") and "closed the stream before it finished" in error
    fake.configure(drop_after_chunks=None)
    assert warm(proxy, [item(path, stream=True)])["sent"] == 1


# --- export and import ------------------------------------------------------------------------------------------


def ollacache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ)
    )


def test_export_then_import_moves_entries_of_both_routes(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    fake, url = upstream
    first, second, file = tmp_path / "one", tmp_path / "two", tmp_path / "agents.jsonl.gz"
    with proxy_in_thread(url, **{"cache.dir": str(first)}) as online:
        whole = {path: ask(online, path) for path in (MESSAGES, RESPONSES)}
        streamed = {path: ask(online, path, "Tell me more", stream=True) for path in (MESSAGES, RESPONSES)}
        stored(online, 4)

    exported = ollacache("export", str(file), "--cache-dir", str(first))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"exported 4 entries from {first} to {file}"
    lines = [json.loads(line) for line in gzip.decompress(file.read_bytes()).splitlines()[1:-1]]
    assert sorted((line["route"], line["streamed"]) for line in lines) == [
        (MESSAGES, False),
        (MESSAGES, True),
        (RESPONSES, False),
        (RESPONSES, True),
    ]
    imported = ollacache("import", str(file), "--cache-dir", str(second))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"imported 4 entries into {second}"

    fake.reset()
    with proxy_in_thread(url, **{"cache.dir": str(second)}) as moved:
        for path in (MESSAGES, RESPONSES):
            for stream in (False, True):
                hit = ask(moved, path, stream=stream)
                assert (hit.cache, hit.key, hit.text) == ("HIT", whole[path].key, whole[path].text)
                hit = ask(moved, path, "Tell me more", stream=stream)
                assert (hit.cache, hit.key, hit.text) == ("HIT", streamed[path].key, streamed[path].text)
                assert not stream or hit.kinds[-1] == ENDS[path]
    assert fake.total_calls(MESSAGES) == fake.total_calls(RESPONSES) == 0


# --- stats and metrics ------------------------------------------------------------------------------------------


def metrics(proxy: RunningProxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/-/metrics`` as {(sample name, sorted labels): value}."""
    text = httpx.get(proxy.url + "/-/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_stats_and_metrics_count_both_routes_per_route_and_per_client(proxy: RunningProxy, fake: FakeOllama) -> None:
    for path in (MESSAGES, RESPONSES):
        assert [ask(proxy, path).cache, ask(proxy, path, stream=True).cache] == ["MISS", "HIT"]
    assert post(proxy, MESSAGES, body_for(MESSAGES), {"Cache-Control": "no-store"}).headers["x-cache"] == "BYPASS"

    def counts(scope: str, name: str) -> tuple[int, int, int]:
        tally = proxy.stats()[scope].get(name, {})  # type: ignore[attr-defined]
        return tally.get("misses", 0), tally.get("hits", 0), tally.get("bypass", 0)

    settled(lambda: counts("by_route", MESSAGES), (1, 1, 1), "the messages route's counts")
    settled(lambda: counts("by_route", RESPONSES), (1, 1, 0), "the responses route's counts")
    snapshot: Any = proxy.stats()
    routes, clients = snapshot["by_route"], snapshot["clients"]
    for path in (MESSAGES, RESPONSES):
        assert routes[path]["tokens_saved"] > 0 and routes[path]["time_saved_s"] > 0
        assert routes[path]["hit_rate"] == 0.5
    assert counts("clients", "openai-python") == (1, 1, 0)
    assert clients["openai-python"]["tokens_saved"] == routes[RESPONSES]["tokens_saved"]
    assert counts("clients", "httpx") == (0, 0, 1)
    assert snapshot["by_model"]["llama3.2:latest"]["hits"] == 2

    samples = metrics(proxy)
    for path, outcome, value in ((MESSAGES, "hit", 1), (MESSAGES, "bypass", 1), (RESPONSES, "miss", 1)):
        assert samples[("ollacache_route_requests_total", (("outcome", outcome), ("route", path)))] == value
    assert samples[("ollacache_route_tokens_saved_total", (("route", RESPONSES),))] == routes[RESPONSES]["tokens_saved"]
    assert samples[("ollacache_client_requests_total", (("client", "openai-python"), ("outcome", "hit")))] == 1
    assert samples[("ollacache_client_tokens_saved_total", (("client", "openai-python"),))] > 0


def test_the_anthropic_sdk_is_counted_as_anthropic_python(proxy: RunningProxy, fake: FakeOllama) -> None:
    assert [ask(proxy, MESSAGES).cache, ask(proxy, MESSAGES, stream=True).cache] == ["MISS", "HIT"]
    wait_for(lambda: proxy.stats()["by_route"][MESSAGES]["requests"] == 2, "both requests counted")  # type: ignore[index]
    clients: Any = proxy.stats()["clients"]
    assert (clients.get("anthropic-python", {}).get("misses"), clients.get("anthropic-python", {}).get("hits")) == (
        1,
        1,
    ), f"the Anthropic SDK was counted as {sorted(clients)}"
    samples = metrics(proxy)
    assert samples[("ollacache_client_requests_total", (("client", "anthropic-python"), ("outcome", "hit")))] == 1
