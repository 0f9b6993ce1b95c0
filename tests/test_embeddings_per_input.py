"""Batch embeddings cached per input: re-embedding a corpus in which a few chunks changed sends only those
upstream, and every vector comes back at its input's index (the order is the whole point)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import ollama
import openai
import pytest

from core.cache.entry import Entry
from core.cache.request.keys import ROUTES, cache_key
from core.cache.request.per_input import WrongAnswer, compose, split, stored_vector, vectors
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, wait_for

MODEL = "nomic-embed-text"
PATHS = ["/api/embed", "/v1/embeddings"]


def embed(proxy: RunningProxy, path: str, inputs: Any, **more: Any) -> httpx.Response:
    return httpx.post(proxy.url + path, json={"model": MODEL, "input": inputs, **more}, timeout=30)


def vectors_of(path: str, response: httpx.Response) -> list[Any]:
    answer = response.json()
    return answer["embeddings"] if path == "/api/embed" else [item["embedding"] for item in answer["data"]]


def direct(upstream: tuple[FakeOllama, str], path: str, inputs: list[str]) -> list[Any]:
    """The vectors the upstream itself gives, one input at a time."""
    out = []
    for text in inputs:
        answer = httpx.post(upstream[1] + path, json={"model": MODEL, "input": [text]}, timeout=30)
        out.append(vectors_of(path, answer)[0])
    return out


def sent_inputs(fake: FakeOllama, path: str) -> list[list[str]]:
    return [body["input"] for body in fake.received(path)]


@pytest.mark.parametrize("path", PATHS)
def test_a_corpus_with_one_changed_chunk_sends_only_that_chunk(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    fake = upstream[0]
    corpus = [f"chunk {n} of the handbook" for n in range(100)]
    first = embed(proxy, path, corpus)
    assert (first.headers["x-cache"], first.headers["x-cache-inputs"]) == ("MISS", "0/100")
    edited = [*corpus[:40], "chunk 40, rewritten", *corpus[41:]]
    again = embed(proxy, path, edited)
    assert (again.headers["x-cache"], again.headers["x-cache-inputs"]) == ("PARTIAL", "99/100")
    assert sent_inputs(fake, path) == [corpus, ["chunk 40, rewritten"]]  # one call, only the new input
    got = vectors_of(path, again)
    assert got[:40] == vectors_of(path, first)[:40] and got[41:] == vectors_of(path, first)[41:]
    assert got[40] == direct(upstream, path, ["chunk 40, rewritten"])[0] != vectors_of(path, first)[40]
    hit = embed(proxy, path, edited)
    assert (hit.headers["x-cache"], hit.headers["x-cache-inputs"]) == ("HIT", "100/100")
    assert vectors_of(path, hit) == got and fake.total_calls(path) == 3  # the two calls and the direct one


@pytest.mark.parametrize("path", PATHS)
def test_mixed_batches_keep_every_vector_at_its_inputs_index(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    embed(proxy, path, ["b", "d"])
    mixed = ["a", "b", "c", "d", "a", "e", "b"]
    answer = embed(proxy, path, mixed)
    assert (answer.headers["x-cache"], answer.headers["x-cache-inputs"]) == ("PARTIAL", "3/7")
    assert sent_inputs(upstream[0], path)[-1] == ["a", "c", "e"]  # each missing input once, in order
    assert vectors_of(path, answer) == direct(upstream, path, mixed)
    if path == "/v1/embeddings":
        assert [item["index"] for item in answer.json()["data"]] == list(range(7))


@pytest.mark.parametrize("path", PATHS)
def test_identical_inputs_in_one_batch_are_computed_once(
    proxy: RunningProxy, upstream: tuple[FakeOllama, str], path: str
) -> None:
    answer = embed(proxy, path, ["same", "other", "same", "same"])
    assert (answer.headers["x-cache"], answer.headers["x-cache-inputs"]) == ("MISS", "0/4")
    assert sent_inputs(upstream[0], path) == [["same", "other"]]
    got = vectors_of(path, answer)
    assert got[0] == got[2] == got[3] != got[1] and got == direct(upstream, path, ["same", "other", "same", "same"])


@pytest.mark.parametrize("path", PATHS)
def test_a_text_and_a_batch_share_their_inputs(proxy: RunningProxy, fake: FakeOllama, path: str) -> None:
    one = embed(proxy, path, "alone")
    assert one.headers["x-cache"] == "MISS"
    batch = embed(proxy, path, ["alone", "with others"])
    assert (batch.headers["x-cache"], batch.headers["x-cache-inputs"]) == ("PARTIAL", "1/2")
    assert vectors_of(path, batch)[0] == vectors_of(path, one)[0]
    assert embed(proxy, path, "with others").headers["x-cache"] == "HIT"


def test_the_official_clients_read_composed_answers(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    texts = ["red", "green", "blue", "red"]
    with ollama.Client(host=proxy.url) as client:
        client.embed(model=MODEL, input=texts[:2])
        native = client.embed(model=MODEL, input=texts)
    with ollama.Client(host=upstream[1]) as itself:  # the client reads vectors as float32: compare like with like
        alone = [itself.embed(model=MODEL, input=[text]).embeddings[0] for text in texts]
    assert native.embeddings == alone
    assert native.prompt_eval_count == 1  # the tokens of the one input sent upstream: nothing invented
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ollama", max_retries=0) as client:
        client.embeddings.create(model=MODEL, input=texts[1:3])
        created = client.embeddings.create(model=MODEL, input=[*texts, "cyan"])
        again = client.embeddings.create(model=MODEL, input=texts)
    with openai.OpenAI(base_url=upstream[1] + "/v1", api_key="ollama", max_retries=0) as itself:
        alone = [itself.embeddings.create(model=MODEL, input=[text]).data[0].embedding for text in [*texts, "cyan"]]
    assert [d.embedding for d in created.data] == alone  # the client asks base64 and reads float32s
    assert [d.index for d in created.data] == list(range(5)) and created.usage.prompt_tokens == 2
    assert again.usage.prompt_tokens == 0  # every vector stored: no upstream work
    assert upstream[0].total_calls("/v1/embeddings") == 2 + 5  # two through the proxy, five direct


@pytest.mark.parametrize("path", PATHS)
def test_an_upstream_error_reaches_the_client_and_stores_nothing(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    embed(proxy, path, ["kept"])
    fake.configure(fail_status=500, fail_count=1)
    failed = embed(proxy, path, ["kept", "new"])
    assert failed.status_code == 500 and "runner" in failed.text
    assert embed(proxy, path, ["kept", "new"]).headers["x-cache"] == "PARTIAL"  # "new" was not stored


@pytest.mark.parametrize("path", PATHS)
def test_an_answer_with_the_wrong_number_of_vectors_is_a_502_and_stores_nothing(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    fake.configure(embeddings_missing=1)
    wrong = embed(proxy, path, ["one", "two", "three"])
    assert wrong.status_code == 502 and "2 vectors for 3 inputs" in wrong.text
    assert wrong.json()["error"]  # in the route's own error shape
    fake.configure(embeddings_missing=0)
    assert embed(proxy, path, ["one"]).headers["x-cache"] == "MISS"


@pytest.mark.parametrize("path", PATHS)
def test_cache_controls_apply_to_a_batch(proxy: RunningProxy, fake: FakeOllama, path: str) -> None:
    embed(proxy, path, ["stored"])
    only = httpx.post(
        proxy.url + path,
        json={"model": MODEL, "input": ["stored", "not"]},
        headers={"Cache-Control": "only-if-cached"},
        timeout=30,
    )
    assert only.status_code == 504 and only.headers["x-cache-inputs"] == "1/2"
    fresh = httpx.post(
        proxy.url + path, json={"model": MODEL, "input": ["stored"]}, headers={"Cache-Control": "no-cache"}, timeout=30
    )
    assert fresh.headers["x-cache"] == "REFRESH" and fake.total_calls(path) == 2
    kept_out = httpx.post(
        proxy.url + path, json={"model": MODEL, "input": ["nowhere"]}, headers={"Cache-Control": "no-store"}, timeout=30
    )
    assert kept_out.headers["x-cache"] == "BYPASS"
    assert embed(proxy, path, ["nowhere"]).headers["x-cache"] == "MISS"


def test_an_entry_of_a_whole_batch_stored_before_inputs_had_entries_is_still_found(
    proxy: RunningProxy, fake: FakeOllama
) -> None:
    body = {"model": MODEL, "input": ["p", "q"]}
    first = embed(proxy, "/api/embed", body["input"])
    assert proxy.server is not None
    engine = proxy.server.engine
    context = engine.keys.context_for(f"{MODEL}:latest", None, None)
    batch = split(ROUTES["/api/embed"], body, context)
    assert batch is not None
    for key in batch.keys:  # the store as a version that kept whole batches left it
        assert httpx.delete(f"{proxy.url}/-/entries/{key}", headers=proxy.auth).status_code == 200
    whole_key = cache_key("/api/embed", body, context)
    engine.store.put(Entry(whole_key, "/api/embed", f"{MODEL}:latest", False, "application/json", [first.content]))
    again = embed(proxy, "/api/embed", body["input"])
    assert again.headers["x-cache"] == "HIT" and again.headers["x-cache-key"] == whole_key
    assert again.content == first.content and fake.total_calls("/api/embed") == 1


def test_splitting_is_pure_and_keys_each_input_as_the_request_for_it_alone() -> None:
    route = ROUTES["/v1/embeddings"]
    body = {"model": MODEL, "input": ["x", "y", "x"], "encoding_format": "FLOAT", "dimensions": 4}
    batch = split(route, body, None)
    assert batch is not None and batch.unique == ["x", "y"] and batch.at == [0, 1, 0]
    alone = {"model": MODEL, "input": ["y"], "dimensions": 4}
    assert batch.keys[1] == cache_key("/v1/embeddings", alone)  # "float" is the API's default
    assert split(route, {**body, "encoding_format": "base64"}, None).keys[1] != batch.keys[1]  # type: ignore[union-attr]
    assert split(route, {"model": MODEL, "input": [[1, 2, 3]]}, None) is None  # token ids: cached whole
    assert split(ROUTES["/api/embed"], {"model": MODEL, "input": []}, None) is None
    with pytest.raises(WrongAnswer, match="1 vectors for 2 inputs"):
        vectors(route, b'{"data": [{"embedding": [1], "index": 0}]}', 2)
    answer = json.loads(compose(route, MODEL, [b"[1.0]", b"[2.0]"], None))
    assert answer["usage"] == {"prompt_tokens": 0, "total_tokens": 0} and [d["index"] for d in answer["data"]] == [0, 1]
    native = compose(ROUTES["/api/embed"], MODEL, [b"[0.12215089,1]"], {"prompt_eval_count": 3, "total_duration": 9})
    assert (
        native == b'{"model":"nomic-embed-text","embeddings":[[0.12215089,1]],"total_duration":9,"prompt_eval_count":3}'
    )
    # the vectors' text is the upstream's own: a float32 printed short by Go is not printed long again
    texts, _ = vectors(ROUTES["/api/embed"], b'{"embeddings":[[0.12215089,-1e-7]]}', 1)
    assert texts == [b"[0.12215089,-1e-7]"]
    for body in (b'{"model":"m","embeddings":[[1,-1e-7]],"total_duration":5}', b'{ "embeddings" : [ [1, -1e-7] ] }'):
        assert json.loads(stored_vector(ROUTES["/api/embed"], body)) == [1, -1e-7]  # its place, else parsed
    assert stored_vector(route, b'{"data":[{"object":"embedding","embedding":"AAAA","index":0}]}') == b'"AAAA"'


def following(proxy: RunningProxy, count: int) -> None:
    """Wait until ``count`` requests wait for inputs another request is asking the upstream for."""
    assert proxy.server is not None
    flights = proxy.server.engine.proxy.per_input.flights
    wait_for(lambda: flights.waiting == count, f"{count} requests following another")


@pytest.mark.parametrize("path", PATHS)
def test_identical_embeddings_in_flight_make_one_upstream_call(
    proxy: RunningProxy, fake: FakeOllama, path: str
) -> None:
    fake.configure(hang=True)  # the first request is held upstream while four identical ones arrive
    with ThreadPoolExecutor(max_workers=5) as pool:
        sent = [pool.submit(embed, proxy, path, "what is a cache?")]
        assert fake.wait_for_calls(1, path)
        sent += [pool.submit(embed, proxy, path, "what is a cache?") for _ in range(4)]
        following(proxy, 4)
        fake.configure(hang=False)
        answers = [future.result() for future in sent]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "SHARED", "SHARED", "SHARED", "SHARED"]
    assert all(vectors_of(path, answer) == vectors_of(path, answers[0]) for answer in answers)
    assert fake.total_calls(path) == 1
    assert httpx.get(proxy.url + "/-/stats").json()["totals"]["shared"] == 4


def test_batches_in_flight_together_ask_for_each_input_once(proxy: RunningProxy, fake: FakeOllama) -> None:
    path = "/api/embed"
    fake.configure(hang=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(embed, proxy, path, ["alpha", "beta"])
        assert fake.wait_for_calls(1, path)
        second = pool.submit(embed, proxy, path, ["beta", "gamma"])  # follows beta, asks for gamma
        assert fake.wait_for_calls(2, path)  # its call for gamma: it has claimed both inputs by then
        fake.configure(hang=False)
        answers = [first.result(), second.result()]
    assert sent_inputs(fake, path) == [["alpha", "beta"], ["gamma"]]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "MISS"]
    assert vectors_of(path, answers[1]) == vectors_of(path, embed(proxy, path, ["beta", "gamma"]))


def test_a_request_whose_input_failed_for_another_asks_for_it_itself(proxy: RunningProxy, fake: FakeOllama) -> None:
    path = "/api/embed"
    fake.configure(hang=True, fail_status=500, fail_count=1)  # the first call fails once it is let go
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(embed, proxy, path, "delta")
        assert fake.wait_for_calls(1, path)
        second = pool.submit(embed, proxy, path, "delta")
        following(proxy, 1)
        fake.configure(hang=False)
        answers = [first.result(), second.result()]
    assert [answer.status_code for answer in answers] == [500, 200]  # another client's failure is not passed on
    assert answers[1].headers["x-cache"] == "MISS" and fake.total_calls(path) == 2
    assert embed(proxy, path, "delta").headers["x-cache"] == "HIT"


def test_only_if_cached_takes_inputs_in_flight_and_nothing_more(proxy: RunningProxy, fake: FakeOllama) -> None:
    path, cached_only = "/api/embed", {"Cache-Control": "only-if-cached"}
    body = {"model": MODEL, "input": "epsilon"}
    fake.configure(hang=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(embed, proxy, path, "epsilon")
        assert fake.wait_for_calls(1, path)
        second = pool.submit(httpx.post, proxy.url + path, json=body, headers=cached_only, timeout=30)
        following(proxy, 1)
        fake.configure(hang=False)
        answers = [first.result(), second.result()]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "SHARED"]  # following calls nothing
    assert vectors_of(path, answers[1]) == vectors_of(path, answers[0]) and fake.total_calls(path) == 1
    absent = httpx.post(proxy.url + path, json={**body, "input": "zeta"}, headers=cached_only, timeout=30)
    assert absent.status_code == 504 and fake.total_calls(path) == 1
