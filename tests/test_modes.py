"""The merge and the synthesis, pure, checked against the upstream's own answers in both modes.

For one request, the fake Ollama's streamed answer merged must be its non-streamed answer, and its
non-streamed answer synthesised must be a stream like its streamed one, field by field. Compared:
every field, except what the upstream measures or stamps anew on each call and so differs between
two calls by nature: ``created_at`` and the ``*_duration`` timings (native), ``id`` (Ollama draws a
new ``chatcmpl-N`` per request) and ``created`` (OpenAI). Those are checked to be present, taken from
the entry converted.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from core.cache.entry import Entry
from core.cache.request.keys import ROUTES
from core.cache.request.merge import can_merge, merge
from core.cache.request.modes import NATIVE_JSON, NDJSON, OPENAI_JSON, SSE, can_convert, in_mode, spread
from core.cache.request.requests import RequestKeys
from core.cache.request.synthesis import SSE_DONE, synthesise
from core.cache.request.wire import Unmergeable, dumps, ndjson_lines, sse_data
from tests.fakes.ollama_server import FakeOllama

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "the weather in a city",
            "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
        },
    }
]
HI = [{"role": "user", "content": "hi"}]
USAGE = {"stream_options": {"include_usage": True}}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "native chat": ("/api/chat", {"model": "llama3.2", "messages": HI, "options": {"temperature": 0}}),
    "native chat, thinking and a tool call": (
        "/api/chat",
        {"model": "qwen3:0.6b", "messages": HI, "think": True, "tools": TOOLS, "options": {"seed": 7}},
    ),
    "native generate": ("/api/generate", {"model": "llama3.2", "prompt": "hi", "options": {"temperature": 0}}),
    "native generate, thinking": (
        "/api/generate",
        {"model": "qwen3:0.6b", "prompt": "hi", "think": True, "options": {"seed": 3}},
    ),
    "openai chat": ("/v1/chat/completions", {"model": "llama3.2", "messages": HI, "temperature": 0, **USAGE}),
    "openai chat, reasoning and a tool call": (
        "/v1/chat/completions",
        {"model": "qwen3:0.6b", "messages": HI, "reasoning_effort": "low", "tools": TOOLS, "seed": 5, **USAGE},
    ),
    "openai completion": ("/v1/completions", {"model": "llama3.2", "prompt": "hi", "temperature": 0, **USAGE}),
}
NATIVE_STAMPS = ("created_at", "total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
OPENAI_STAMPS = ("id", "created")


def answers(url: str, path: str, body: dict[str, Any]) -> tuple[httpx.Response, httpx.Response]:
    """The upstream's streamed and non-streamed answers to ``body``."""
    return (
        httpx.post(url + path, json={**body, "stream": True}, timeout=30),
        httpx.post(url + path, json={**body, "stream": False}, timeout=30),
    )


def pieces(body: bytes, size: int = 7) -> list[bytes]:
    """A body as a recorder may hold it: network reads that cut lines and events anywhere."""
    return [body[at : at + size] for at in range(0, len(body), size)]


def unstamped(value: dict[str, Any], path: str) -> dict[str, Any]:
    stamps = OPENAI_STAMPS if path.startswith("/v1/") else NATIVE_STAMPS
    return {k: v for k, v in value.items() if k not in stamps}


def events(chunks: list[bytes]) -> list[dict[str, Any]]:
    return ndjson_lines(chunks) if len(chunks) and not chunks[0].startswith(b"data:") else sse_data(chunks)


@pytest.mark.parametrize("case", CASES)
def test_a_merged_stream_is_the_upstreams_own_whole_answer(upstream: tuple[FakeOllama, str], case: str) -> None:
    path, body = CASES[case]
    streamed, whole = answers(upstream[1], path, body)
    assert can_merge(path, pieces(streamed.content))  # a stream in pieces cut anywhere, usage included
    merged = merge(path, pieces(streamed.content))
    expected = json.loads(whole.content)
    assert unstamped(json.loads(merged), path) == unstamped(expected, path)
    assert set(json.loads(merged)) == set(expected)  # the stamps are there too, from the stream
    assert merged.endswith(b"\n") == whole.content.endswith(b"\n")  # /v1 ends with a newline, native does not
    last = events([streamed.content])[-1]
    stamp = "created_at" if path.startswith("/api/") else "id"
    assert json.loads(merged)[stamp] == last[stamp]  # Ollama's whole answer carries its last chunk's


@pytest.mark.parametrize("case", CASES)
def test_a_synthesised_stream_is_like_the_upstreams_own_stream(upstream: tuple[FakeOllama, str], case: str) -> None:
    path, body = CASES[case]
    streamed, whole = answers(upstream[1], path, body)
    synthesised = synthesise(path, whole.content, include_usage=True)
    real, made = events([streamed.content]), events(synthesised)
    assert json.loads(merge(path, synthesised)) == json.loads(whole.content)  # nothing lost, nothing added
    if path.startswith("/api/"):
        assert unstamped(made[-1], path) == unstamped(real[-1], path)  # the final line: statistics, reason
        assert all(line["done"] is False for line in made[:-1]) and len(made) <= 2
    else:
        assert streamed.content.endswith(SSE_DONE) and synthesised[-1] == SSE_DONE
        assert [unstamped(c, path) for c in made[-2:]] == [unstamped(c, path) for c in real[-2:]]  # finish, usage
        assert {c["id"] for c in made} == {json.loads(whole.content)["id"]}
        assert {c["object"] for c in made} == {c["object"] for c in real}
        if path == "/v1/chat/completions":
            assert made[0]["choices"][0]["delta"]["role"] == "assistant"
            assert all("role" not in c["choices"][0]["delta"] for c in made[1:] if c["choices"])
    for fields in made:  # no field the upstream's stream never has
        assert set(fields) <= set().union(*real)


def test_a_stream_without_usage_is_not_merged_and_a_synthesised_one_has_none(upstream: tuple[FakeOllama, str]) -> None:
    for path in ("/v1/chat/completions", "/v1/completions"):
        body = {
            k: v
            for k, v in CASES["openai chat" if "chat" in path else "openai completion"][1].items()
            if k != "stream_options"
        }
        streamed, whole = answers(upstream[1], path, body)
        assert not can_merge(path, pieces(streamed.content))
        with pytest.raises(Unmergeable, match="include_usage"):
            merge(path, [streamed.content])
        made = synthesise(path, whole.content)
        real = events([streamed.content])
        assert unstamped(events(made)[-1], path) == unstamped(real[-1], path)  # the finish chunk ends it
        assert all("usage" not in c for c in real + events(made)) and made[-1] == SSE_DONE


def test_an_entry_answers_in_either_mode_with_the_upstreams_content_type(upstream: tuple[FakeOllama, str]) -> None:
    for case in ("native chat", "openai chat"):
        path, body = CASES[case]
        streamed, whole = answers(upstream[1], path, body)
        as_stream = Entry(
            "k",
            path,
            "m",
            True,
            streamed.headers["content-type"],
            pieces(streamed.content, 40),
            offsets_s=[0.1 * k for k in range(len(pieces(streamed.content, 40)))],
            duration_s=9.0,
        )
        as_whole = Entry("k", path, "m", False, whole.headers["content-type"], [whole.content], [2.0], duration_s=2.0)
        same = in_mode(as_stream, streamed=True, include_usage=True)
        assert (list(same.chunks), list(same.offsets_s), same.converted) == (
            as_stream.chunks,
            as_stream.offsets_s,
            False,
        )
        unasked = in_mode(as_stream, streamed=True)  # an OpenAI stream loses the usage its client did not ask
        assert len(unasked.chunks) == len(as_stream.chunks) and list(unasked.offsets_s) == as_stream.offsets_s
        if path.startswith("/v1/"):
            assert b'"usage"' in b"".join(as_stream.chunks) and b'"usage"' not in b"".join(unasked.chunks)
        else:
            assert list(unasked.chunks) == as_stream.chunks
        merged = in_mode(as_stream, streamed=False)
        assert merged.content_type == whole.headers["content-type"] == (OPENAI_JSON if path[1] == "v" else NATIVE_JSON)
        assert merged.offsets_s == [as_stream.offsets_s[-1]] and merged.converted  # the whole answer was there then
        made = in_mode(as_whole, streamed=True, include_usage=True)
        assert made.content_type == streamed.headers["content-type"] == (SSE if path[1] == "v" else NDJSON)
        assert list(made.offsets_s) == spread(len(made.chunks), 2.0) and made.offsets_s[-1] == 2.0
        assert can_convert(path, True, as_stream.chunks) and can_convert(path, False, as_whole.chunks)
    assert not can_convert("/api/embed", False, [b"{}"]) and not can_convert("/v1/embeddings", False, [b"{}"])


def test_the_request_says_whether_it_wants_usage() -> None:
    keys, route = RequestKeys(), ROUTES["/v1/chat/completions"]
    asking = keys.facts(route, b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}', None)
    assert asking is not None and asking.usage
    plain = keys.facts(route, b'{"model":"m","stream":true}', None)
    assert plain is not None and not plain.usage
    assert keys.facts(route, b"[1]", None) is None and keys.facts(route, b"{", None) is None  # never converted
    native = keys.facts(ROUTES["/api/chat"], b'{"model":"m","stream_options":{"include_usage":true}}', None)
    assert native is not None and not native.usage  # a native stream has no usage chunk
    assert spread(4, 2.0) == [0.5, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("body", [b"", b"not json", b'{"model":"m"}\n', b'data: {"choices": []}\n\n'])
def test_what_is_not_a_whole_stream_is_refused(body: bytes) -> None:
    for path in ("/api/chat", "/v1/chat/completions", "/api/embed"):
        with pytest.raises(Unmergeable):
            merge(path, [body])
    assert not can_merge("/v1/chat/completions", [body, b'data: {"usage": {"total_tokens": 3}}\n\ndata: {'])


def sse(*chunks: dict[str, Any]) -> list[bytes]:
    return [b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks] + [SSE_DONE]


def test_openai_tool_call_fragments_are_joined_by_index_and_choices_kept_apart() -> None:
    """As OpenAI itself streams them (Ollama sends each call whole): arguments in fragments, two choices."""
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "m",
        "system_fingerprint": "fp",
    }

    def call(index: int, arguments: str, **first: str) -> dict[str, Any]:
        return {"index": index, **first, "function": {"arguments": arguments, **({"name": "f"} if first else {})}}

    stream = sse(
        {
            **head,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
                {"index": 1, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None},
            ],
        },
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            call(0, '{"ci', id="a", type="function"),
                            call(1, '{"x"', id="b", type="function"),
                        ]
                    },
                    "finish_reason": None,
                }
            ],
        },
        {
            **head,
            "choices": [
                {"index": 0, "delta": {"tool_calls": [call(1, ":1}"), call(0, 'ty":"Oslo"}')]}, "finish_reason": None},
                {"index": 1, "delta": {"content": "lo"}, "finish_reason": None},
            ],
        },
        {
            **head,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
                {"index": 1, "delta": {}, "finish_reason": "stop"},
            ],
        },
        {**head, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}},
    )
    whole = json.loads(merge("/v1/chat/completions", pieces(b"".join(stream), 5)))
    assert whole["object"] == "chat.completion" and (whole["id"], whole["created"]) == ("chatcmpl-1", 5)
    first, second = whole["choices"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in first["message"]["tool_calls"]] == [
        ("a", "f", '{"city":"Oslo"}'),
        ("b", "f", '{"x":1}'),
    ]
    assert (first["finish_reason"], second["finish_reason"], second["message"]["content"]) == (
        "tool_calls",
        "stop",
        "Hello",
    )
    assert whole["usage"]["total_tokens"] == 10
    again = json.loads(merge("/v1/chat/completions", synthesise("/v1/chat/completions", dumps(whole), True)))
    assert again == whole  # each choice synthesised on its own, then merged back


def test_logprobs_are_joined_in_order_and_carried_by_the_synthesised_line() -> None:
    def line(content: str, done: bool = False, **extra: Any) -> bytes:
        return (
            json.dumps(
                {
                    "model": "m",
                    "created_at": "t",
                    "message": {"role": "assistant", "content": content},
                    "done": done,
                    **extra,
                }
            ).encode()
            + b"\n"
        )

    token = [{"token": "Hi", "logprob": -0.1}], [{"token": "!", "logprob": -0.5}]
    stream = [
        line("Hi", logprobs=token[0]),
        line("!", logprobs=token[1]),
        line("", True, done_reason="stop", eval_count=2),
    ]
    whole = json.loads(merge("/api/chat", stream))
    assert whole["logprobs"] == token[0] + token[1] and whole["message"]["content"] == "Hi!"
    opening, final = (json.loads(made) for made in synthesise("/api/chat", dumps(whole)))
    assert opening["logprobs"] == whole["logprobs"] and "logprobs" not in final and final["eval_count"] == 2
