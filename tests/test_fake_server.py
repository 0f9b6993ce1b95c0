"""The fake Ollama server speaks Ollama's wire formats to the official clients.

One server (real sockets on 127.0.0.1) is shared by the module and reset
before every test; tests that need their own server or process start one.
Durations asserted here are in seconds unless a name says otherwise.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.fakes.fake_config import DEFAULT_CONFIG
from tests.fakes.ollama_server import FakeOllama, serve_in_thread

REPO = Path(__file__).resolve().parents[1]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
SEEDED: dict[str, Any] = {"seed": 42}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeOllama, str]]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def fake(server: tuple[FakeOllama, str]) -> FakeOllama:
    server[0].reset()
    return server[0]


@pytest.fixture
def base_url(server: tuple[FakeOllama, str], fake: FakeOllama) -> str:
    return server[1]


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
def oll(base_url: str) -> Iterator[ollama.Client]:
    with ollama.Client(host=base_url) as client:
        yield client


@pytest.fixture
def oai(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0) as client:
        yield client


def ndjson(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def sse_payloads(text: str) -> list[str]:
    events = text.split("\n\n")
    assert events[-1] == "" and all(e.startswith("data: ") for e in events[:-1]), text
    return [e[len("data: ") :] for e in events[:-1]]


# --- native API through the official ollama client -----------------------------------------


def test_generate_stream_equals_non_stream_for_seeded_request(oll: ollama.Client) -> None:
    chunks = list(oll.generate(model="llama3.2", prompt="Why is the sky blue?", options=SEEDED, stream=True))
    whole = oll.generate(model="llama3.2", prompt="Why is the sky blue?", options=SEEDED)
    final = chunks[-1]
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert "".join(c.response or "" for c in chunks) == whole.response != ""
    assert final.done_reason == whole.done_reason == "stop"
    for stat in (
        "eval_count",
        "prompt_eval_count",
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ):
        assert final[stat] == whole[stat] and whole[stat] > 0, stat
    assert final.eval_count == DEFAULT_CONFIG["tokens"] == len(chunks) - 1
    assert final.context == whole.context and whole.context and all(isinstance(t, int) for t in whole.context)
    assert all(RFC3339.match(c.created_at or "") for c in chunks)


def test_unseeded_answers_differ_but_temperature_zero_is_stable_across_aliases(oll: ollama.Client) -> None:
    first = oll.generate(model="llama3.2", prompt="hi").response
    second = oll.generate(model="llama3.2", prompt="hi").response
    assert first != second
    names = ["llama3.2", "LLAMA3.2:latest", "library/llama3.2", "registry.ollama.ai/library/llama3.2:latest"]
    answers = [oll.generate(model=n, prompt="hi", options={"temperature": 0}) for n in names]
    assert len({a.response for a in answers}) == 1
    assert [a.model for a in answers] == names  # the model is echoed as spelled


def test_num_predict_and_stop_truncate_the_same_text(oll: ollama.Client) -> None:
    full = oll.generate(model="llama3.2", prompt="count", options=SEEDED).response or ""
    capped = oll.generate(model="llama3.2", prompt="count", options={**SEEDED, "num_predict": 3})
    assert capped.done_reason == "length" and capped.eval_count == 3
    assert full.startswith(capped.response or "x") and len(capped.response or "") < len(full)
    stop_word = full.split()[4]
    stopped = oll.generate(model="llama3.2", prompt="count", options={**SEEDED, "stop": [" " + stop_word]})
    assert stopped.done_reason == "stop"
    assert stopped.response == full[: full.index(" " + stop_word)]


def test_thinking_model_thinks_by_default_and_others_refuse(oll: ollama.Client) -> None:
    msgs = [{"role": "user", "content": "hello"}]
    streamed = list(oll.chat(model="qwen3:0.6b", messages=msgs, options=SEEDED, stream=True))
    whole = oll.chat(model="qwen3:0.6b", messages=msgs, options=SEEDED)
    assert whole.message.thinking and whole.message.content
    assert "".join(c.message.thinking or "" for c in streamed) == whole.message.thinking
    assert "".join(c.message.content or "" for c in streamed) == whole.message.content
    assert not oll.chat(model="qwen3:0.6b", messages=msgs, think=False).message.thinking
    with pytest.raises(ollama.ResponseError) as err:
        oll.chat(model="llama3.2", messages=msgs, think=True)
    assert (err.value.status_code, err.value.error) == (400, '"llama3.2" does not support thinking')


def test_format_json_and_schema_give_json_objects(oll: ollama.Client) -> None:
    plain = oll.generate(model="llama3.2", prompt="json please", format="json")
    assert isinstance(json.loads(plain.response or ""), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    shaped = json.loads(
        oll.chat(model="llama3.2", messages=[{"role": "user", "content": "x"}], format=schema).message.content or ""
    )
    assert set(shaped) == {"name", "age"} and isinstance(shaped["age"], int)


def test_chat_with_tools_answers_with_a_deterministic_tool_call(oll: ollama.Client) -> None:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = oll.chat(model="llama3.2", messages=msgs, tools=[WEATHER_TOOL], options=SEEDED)
    again = oll.chat(model="llama3.2", messages=msgs, tools=[WEATHER_TOOL], options=SEEDED)
    calls = first.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert set(calls[0].function.arguments) == {"city"} and first.message.content == ""
    assert again.message.tool_calls == calls
    msgs += [
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    after = oll.chat(model="llama3.2", messages=msgs, tools=[WEATHER_TOOL])
    assert after.message.content and not after.message.tool_calls


def test_embeddings_are_deterministic_unit_vectors(oll: ollama.Client) -> None:
    one = oll.embed(model="nomic-embed-text", input=["alpha", "beta"])
    two = oll.embed(model="nomic-embed-text:latest", input="alpha")
    assert len(one.embeddings) == 2 and all(len(v) == 16 for v in one.embeddings)
    assert one.embeddings[0] == two.embeddings[0] != one.embeddings[1]
    assert math.isclose(math.fsum(x * x for x in one.embeddings[0]), 1.0, rel_tol=1e-5)
    assert one.prompt_eval_count == 2 and (one.total_duration or 0) > 0
    short = oll.embed(model="nomic-embed-text", input="alpha", dimensions=4)
    assert len(short.embeddings[0]) == 4
    legacy = oll.embeddings(model="nomic-embed-text", prompt="alpha")
    assert (
        len(legacy.embedding) == 16
        and legacy.embedding == oll.embeddings(model="nomic-embed-text", prompt="alpha").embedding
    )


def test_list_ps_show_share_stable_digests(oll: ollama.Client) -> None:
    listed = {m.model: m.digest for m in oll.list().models}
    assert set(listed) == {"llama3.2:latest", "qwen3:0.6b", "nomic-embed-text:latest"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", d or "") for d in listed.values())
    assert oll.ps().models == []
    oll.generate(model="qwen3:0.6b", prompt="hi")
    running = oll.ps().models
    assert [(m.model, m.digest) for m in running] == [("qwen3:0.6b", listed["qwen3:0.6b"])]
    shown = oll.show("qwen3:0.6b")
    assert shown.capabilities == ["completion", "tools", "thinking"] and shown.details
    assert shown.details.family == "qwen3"
    with pytest.raises(ollama.ResponseError) as err:
        oll.show("missing")
    assert (err.value.status_code, err.value.error) == (404, "model 'missing:latest' not found")


def test_an_unload_request_takes_the_model_out_of_ps_like_ollama(oll: ollama.Client) -> None:
    oll.generate(model="qwen3:0.6b", prompt="hi")
    oll.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert {m.model for m in oll.ps().models} == {"qwen3:0.6b", "llama3.2:latest"}
    unloaded = oll.generate(model="qwen3:0.6b", keep_alive=0)  # Ollama's way: no prompt, keep_alive 0
    assert (unloaded.done, unloaded.done_reason, unloaded.response) == (True, "unload", "")
    assert [m.model for m in oll.ps().models] == ["llama3.2:latest"]
    assert oll.chat(model="llama3.2", messages=[], keep_alive=0).done_reason == "unload"  # chat's way
    assert oll.ps().models == []
    with pytest.raises(ollama.ResponseError) as err:
        oll.generate(model="missing", keep_alive=0)
    assert (err.value.status_code, err.value.error) == (404, "model 'missing' not found")


def test_pull_streams_progress_and_installs_the_model(oll: ollama.Client) -> None:
    statuses = [p.status for p in oll.pull("mistral:7b", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert oll.pull("mistral:7b").status == "success"
    assert "mistral:7b" in {m.model for m in oll.list().models}


# --- OpenAI-compatible API through the official openai client -----------------------------


def test_openai_chat_stream_merges_to_the_non_streamed_answer(oai: openai.OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "hi"}]
    whole = oai.chat.completions.create(model="llama3.2", messages=msgs, seed=7)
    assert whole.id.startswith("chatcmpl-") and whole.object == "chat.completion"
    assert whole.system_fingerprint == "fp_ollama" and whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens == 12
    with oai.chat.completions.create(
        model="llama3.2", messages=msgs, seed=7, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage and len({c.id for c in chunks}) == 1


def test_openai_tool_calls_and_max_tokens(oai: openai.OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "weather?"}]
    tools: Any = [WEATHER_TOOL]
    called = oai.chat.completions.create(model="llama3.2", messages=msgs, tools=tools, seed=1)
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call: Any = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    capped = oai.chat.completions.create(model="qwen3:0.6b", messages=msgs, max_tokens=2)
    assert capped.choices[0].finish_reason == "length" and capped.usage and capped.usage.completion_tokens == 2


def test_openai_completions_embeddings_and_models(oai: openai.OpenAI, oll: ollama.Client) -> None:
    done = oai.completions.create(model="llama3.2", prompt="Once", temperature=0)
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    with oai.completions.create(model="llama3.2", prompt="Once", temperature=0, stream=True) as stream:
        text = "".join(c.choices[0].text for c in stream if c.choices)
    assert text == done.choices[0].text != ""
    vectors = oai.embeddings.create(model="nomic-embed-text", input=["alpha", "beta"])  # base64 on the wire
    native = oll.embed(model="nomic-embed-text", input=["alpha", "beta"]).embeddings
    for got, want in zip((d.embedding for d in vectors.data), native, strict=False):
        assert got == pytest.approx(want, rel=1e-6)
    assert [m.id for m in oai.models.list()] == ["llama3.2:latest", "qwen3:0.6b", "nomic-embed-text:latest"]
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.body == {
        "message": "model 'nope' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }


# --- raw wire checks ---------------------------------------------------------------------------


def test_ndjson_framing_and_field_omission(http: httpx.Client) -> None:
    resp = http.post("/api/chat", json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]})
    assert resp.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(resp.text)
    assert all(set(line) == {"model", "created_at", "message", "done"} for line in lines[:-1])
    assert list(lines[-1]) == [
        "model",
        "created_at",
        "message",
        "done",
        "done_reason",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ]
    assert lines[-1]["message"] == {"role": "assistant", "content": ""}
    whole = http.post("/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False})
    assert whole.headers["content-type"] == "application/json; charset=utf-8" and "context" in whole.json()
    load = http.post("/api/generate", json={"model": "llama3.2"}).json()
    assert (load["done"], load["done_reason"], load["response"]) == (True, "load", "")


def test_sse_framing_role_first_and_done_last(http: httpx.Client) -> None:
    resp = http.post(
        "/v1/chat/completions",
        json={
            "model": "qwen3:0.6b",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert resp.headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(resp.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and "reasoning" in chunks[0]["choices"][0]["delta"]
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert all("usage" not in c for c in chunks[:-1])


@pytest.mark.parametrize(
    "path,body,frame_end",
    [
        ("/api/generate", {"model": "llama3.2", "prompt": "x"}, b"\n"),
        (
            "/v1/chat/completions",
            {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            b"\n\n",
        ),
    ],
)
def test_drop_after_chunks_aborts_the_connection(
    fake: FakeOllama, http: httpx.Client, path: str, body: dict[str, Any], frame_end: bytes
) -> None:
    fake.configure(drop_after_chunks=3)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", path, json=body) as resp:
            assert resp.status_code == 200
            for part in resp.iter_bytes():
                received += part
    frames = [f for f in received.split(frame_end) if f]
    assert len(frames) == 3 and b'"done":true' not in received and b"[DONE]" not in received


def test_failures_are_injected_counted_and_shaped_per_api(fake: FakeOllama, http: httpx.Client) -> None:
    fake.configure(fail_status=503, fail_message="overloaded", fail_count=2)
    body = {"model": "llama3.2", "prompt": "x", "stream": False}
    assert http.get("/api/tags").status_code == 200  # only cached (inference) routes fail
    first = http.post("/api/generate", json=body)
    second = http.post("/v1/completions", json=body)
    assert (first.status_code, first.json()) == (503, {"error": "overloaded"})
    assert second.status_code == 503 and second.json() == {
        "error": {"message": "overloaded", "type": "api_error", "param": None, "code": None}
    }
    assert http.post("/api/generate", json=body).status_code == 200
    fake.configure(fail_status=500, fail_count=None)
    assert [
        http.post("/api/embed", json={"model": "nomic-embed-text", "input": "a"}).status_code for _ in range(3)
    ] == [500, 500, 500]
    assert fake.total_calls("/api/generate") == 2 and fake.total_calls("/api/embed") == 3
    assert fake.total_calls() == 7 and fake.calls["/v1/completions"] == 1


def test_ollama_error_bodies_and_statuses(http: httpx.Client) -> None:
    cases = [
        ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "model 'nope' not found"),
        ("/api/chat", {"model": "nope", "messages": []}, 404, "model 'nope' not found"),
        ("/api/embed", {"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
        ("/api/chat", {"messages": []}, 400, "model is required"),
        ("/api/generate", {"prompt": "x"}, 404, "model '' not found"),
        (
            "/api/generate",
            {"model": "nomic-embed-text", "prompt": "x"},
            400,
            '"nomic-embed-text" does not support generate',
        ),
        ("/api/embed", {"model": "nomic-embed-text", "input": [1]}, 400, "invalid input type"),
    ]
    for path, body, status, message in cases:
        resp = http.post(path, json=body)
        assert (resp.status_code, resp.json()) == (status, {"error": message}), (path, body)
    bad = http.post("/api/generate", content=b'{"model": llama}')
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid character 'l' looking for beginning of value"})
    assert http.post("/api/chat", content=b"").json() == {"error": "missing request body"}
    v1 = http.post("/v1/chat/completions", content=b"{")
    assert v1.status_code == 400 and v1.json()["error"]["type"] == "invalid_request_error"


def test_tags_can_be_disabled_and_unknown_routes_look_like_gin(fake: FakeOllama, http: httpx.Client) -> None:
    fake.configure(tags_enabled=False)
    tags = http.get("/api/tags")
    assert (tags.status_code, tags.text, tags.headers["content-type"]) == (404, "404 page not found", "text/plain")
    assert http.get("/v1/models").status_code == 200
    assert (http.get("/api/nothing").status_code, http.get("/api/nothing").text) == (404, "404 page not found")
    assert (http.get("/api/chat").status_code, http.get("/api/chat").text) == (405, "405 method not allowed")
    root = http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running") and http.head("/").status_code == 200
    assert http.get("/api/version").json() == {"version": "0.12.0"}


def test_control_endpoints_configure_count_and_reset(fake: FakeOllama, http: httpx.Client) -> None:
    http.get("/api/version")
    http.get("/nowhere")
    assert http.get("/_fake/calls").json() == {"total": 2, "by_path": {"/api/version": 1, "/nowhere": 1}}
    assert http.post("/_fake/config", json={"tokens": 3}).json()["tokens"] == 3
    assert http.post("/_fake/config", json={"bogus": 1}).status_code == 400
    assert (
        http.post("/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False}).json()["eval_count"] == 3
    )
    assert http.post("/_fake/reset").status_code == 200
    assert fake.total_calls() == 0 and fake.config()["tokens"] == DEFAULT_CONFIG["tokens"]


def test_delays_slow_down_answers_and_shape_eval_duration(fake: FakeOllama, http: httpx.Client) -> None:
    fake.configure(first_byte_delay_ms=150, chunk_delay_ms=20, tokens=5)
    start = time.monotonic()
    lines = ndjson(http.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}).text)
    assert time.monotonic() - start >= 0.15 + 5 * 0.02
    assert lines[-1]["eval_duration"] == 5 * 20_000_000 and lines[-1]["eval_count"] == 5


def test_hang_holds_requests_until_reset(fake: FakeOllama, base_url: str) -> None:
    fake.configure(hang=True)
    with httpx.Client(base_url=base_url, timeout=0.3) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get("/api/version")
    with httpx.Client(base_url=base_url, timeout=10) as patient, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(patient.get, "/api/tags")
        assert fake.wait_for_calls(1, "/api/tags")
        assert not pending.done()
        fake.reset()
        assert pending.result(timeout=10).status_code == 200


def test_shutdown_does_not_wait_for_hung_requests() -> None:
    with httpx.Client(timeout=10) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        with serve_in_thread(FakeOllama(hang=True)) as (fake, url):
            pending = pool.submit(client.get, url + "/api/version")
            assert fake.wait_for_calls(1)
            start = time.monotonic()
        assert time.monotonic() - start < 3
        with pytest.raises(httpx.RemoteProtocolError):
            pending.result(timeout=10)


def test_process_mode_prints_its_url_and_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.ollama_server", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    watchdog = threading.Timer(20, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"fake-ollama listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        with httpx.Client(base_url=match.group(1), timeout=10) as client:
            assert client.get("/").text == "Ollama is running"
            client.post("/_fake/config", json={"fail_status": 500, "fail_count": 1})
            assert client.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}).status_code == 500
            assert client.get("/_fake/calls").json()["total"] == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert out == ""
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_base64_embedding_is_little_endian_float32(http: httpx.Client) -> None:
    body = {"model": "nomic-embed-text", "input": "alpha", "encoding_format": "base64"}
    resp = http.post("/v1/embeddings", json=body)
    assert resp.text.endswith("\n")
    raw = base64.b64decode(resp.json()["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(raw) // 4}f", raw)
    native = http.post("/api/embed", json={"model": "nomic-embed-text", "input": "alpha"}).json()
    assert list(floats) == pytest.approx(native["embeddings"][0], rel=1e-6) and len(floats) == 16
