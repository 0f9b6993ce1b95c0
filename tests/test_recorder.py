"""What may be stored: complete successes only, judged from the recorded bytes."""

from __future__ import annotations

import json

import pytest

from core.cache.request.errors import error_chunk
from core.cache.request.keys import ROUTES
from core.cache.request.recorder import Recorder


def record(path: str, chunks: list[bytes], streamed: bool, status: int = 200) -> Recorder:
    recorder = Recorder(ROUTES[path], streamed, started=100.0)
    recorder.begin(status, "application/x-ndjson" if streamed else "application/json")
    for i, chunk in enumerate(chunks):
        recorder.feed(chunk, 100.0 + i / 10)
    return recorder


def ndjson(*objects: object) -> list[bytes]:
    return [json.dumps(o).encode() + b"\n" for o in objects]


def sse(*objects: object, done: bool = True) -> list[bytes]:
    events = [b"data: " + json.dumps(o).encode() + b"\n\n" for o in objects]
    return events + ([b"data: [DONE]\n\n"] if done else [])


FINAL = {"model": "m", "done": True, "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 3}


def test_a_finished_ollama_stream_is_stored_with_its_token_counts() -> None:
    recorder = record("/api/chat", ndjson({"message": {"content": "hi"}, "done": False}, FINAL), True)
    verdict = recorder.verdict()
    assert verdict.storable and (verdict.prompt_tokens, verdict.completion_tokens) == (7, 3)
    entry = recorder.entry("k", "m", verdict, created=5.0, finished=101.5)
    assert entry.offsets_s == pytest.approx([0.0, 0.1]) and entry.duration_s == pytest.approx(1.5)


def test_chunk_boundaries_that_split_lines_are_still_judged_whole() -> None:
    whole = b"".join(ndjson({"response": "a", "done": False}, FINAL))
    assert record("/api/generate", [whole[:5], whole[5:40], whole[40:]], True).verdict().storable


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        (ndjson({"message": {"content": "hi"}, "done": False}), "final chunk"),
        (ndjson({"message": {"content": "hi"}, "done": False}, {"error": "model runner crashed"}), "error"),
        (ndjson({"error": "oops"}, FINAL), "error"),
        ([b'{"message":{"content":"h'], "unreadable"),
        ([], "empty"),
    ],
)
def test_cut_or_failed_ollama_streams_are_not_stored(chunks: list[bytes], reason: str) -> None:
    verdict = record("/api/chat", chunks, True).verdict()
    assert not verdict.storable and reason in verdict.reason


def test_non_200_answers_are_never_stored() -> None:
    verdict = record("/api/chat", [json.dumps(FINAL).encode()], False, status=500).verdict()
    assert not verdict.storable and "500" in verdict.reason


@pytest.mark.parametrize(
    ("path", "body", "storable"),
    [
        ("/api/chat", {**FINAL, "message": {"role": "assistant", "content": "x"}}, True),
        ("/api/chat", {"error": "model not found"}, False),
        ("/api/chat", {**FINAL, "done": False}, False),
        ("/api/embed", {"model": "m", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 2}, True),
        ("/api/embed", {"model": "m"}, False),
        ("/api/embeddings", {"embedding": [0.1]}, True),
        (
            "/v1/chat/completions",
            {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
            True,
        ),
        ("/v1/chat/completions", {"error": {"message": "bad"}}, False),
        ("/v1/embeddings", {"data": [{"embedding": [0.1]}]}, True),
        ("/v1/embeddings", {"data": []}, False),
    ],
)
def test_whole_answers_are_judged_by_their_content(path: str, body: dict[str, object], storable: bool) -> None:
    assert record(path, [json.dumps(body).encode()], False).verdict().storable is storable


def test_openai_streams_need_done_and_no_error_event() -> None:
    chunk = {"choices": [{"delta": {"content": "hi"}}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    verdict = record("/v1/chat/completions", sse(chunk, usage), True).verdict()
    assert verdict.storable and verdict.prompt_tokens == 5
    assert not record("/v1/chat/completions", sse(chunk, done=False), True).verdict().storable
    assert not record("/v1/chat/completions", sse(chunk, {"error": {"message": "x"}}), True).verdict().storable


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_the_error_line_for_a_cut_stream_is_in_the_routes_own_format(path: str) -> None:
    line = error_chunk(ROUTES[path], "the upstream closed the stream")
    recorder = record(path, [line], True)
    assert not recorder.verdict().storable
    text = line.decode()
    payload = json.loads(text.removeprefix("data: "))
    assert "the upstream closed the stream" in json.dumps(payload["error"])


@pytest.mark.parametrize("reason", ["load", "unload"])
def test_a_model_load_or_unload_is_not_an_answer_to_store(reason: str) -> None:
    line = json.dumps({"model": "m", "created_at": "x", "response": "", "done": True, "done_reason": reason}).encode()
    assert not record("/api/generate", [line], True).verdict().storable
    assert not record("/api/generate", [line], False).verdict().storable
