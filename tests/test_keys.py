"""Cache keys: equivalent requests share a key, requests with different answers never do."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cache.request import keys as keys_module
from core.cache.request.canonical_json import LARGE_FORM, PIECE, canonical_bytes, canonical_pieces
from core.cache.request.keys import (
    PERFORMANCE_OPTIONS,
    ROUTES,
    NotCacheable,
    cache_key,
    canonical_request,
    keys_per_input,
    legacy_key,
    normalize_model,
)

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    "options": {"temperature": 0, "seed": 42},
}

# Every output-changing field of each route, with two values giving different answers.
OUTPUT_FIELDS: dict[str, dict[str, tuple[Any, Any]]] = {
    "/api/chat": {
        "messages": ([{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]),
        "format": ("json", {"type": "object"}),
        "tools": ([], [{"type": "function", "function": {"name": "f"}}]),
        "think": (True, False),
        "model": ("llama3.2", "qwen3:0.6b"),
    },
    "/api/generate": {
        "prompt": ("a", "b"),
        "system": ("", "be brief"),
        "suffix": ("", "}"),
        "template": ("", "{{ .Prompt }}"),
        "context": ([], [1, 2, 3]),
        "raw": (False, True),
        "images": ([], ["aGVsbG8="]),
        "format": ("json", {"type": "object"}),
        "think": (True, False),
    },
    "/api/embed": {"input": ("a", ["a", "b"]), "truncate": (True, False), "dimensions": (0, 64)},
    "/api/embeddings": {"prompt": ("a", "b")},
    "/v1/chat/completions": {
        "messages": ([{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]),
        "temperature": (0, 0.7),
        "max_tokens": (10, 20),
        "seed": (1, 2),
        "response_format": ({"type": "text"}, {"type": "json_object"}),
        "stop": (["x"], ["y"]),
    },
    "/v1/completions": {"prompt": ("a", "b"), "temperature": (0, 1), "max_tokens": (5, 6), "suffix": ("", "}")},
    "/v1/embeddings": {"input": ("a", "b"), "dimensions": (8, 16), "encoding_format": ("float", "base64")},
}
OUTPUT_OPTIONS = {
    "temperature": (0, 0.8),
    "seed": (1, 2),
    "num_ctx": (2048, 4096),
    "num_predict": (16, 32),
    "top_k": (10, 40),
    "top_p": (0.5, 0.9),
    "stop": (["\n"], ["."]),
    "repeat_penalty": (1.0, 1.1),
}
BASE = {path: {"model": "llama3.2"} for path in ROUTES}


@pytest.mark.parametrize(
    "spelling",
    [
        "llama3.2",
        "llama3.2:latest",
        "library/llama3.2",
        "LLAMA3.2:Latest",
        "registry.ollama.ai/library/llama3.2:latest",
        " llama3.2 ",
    ],
)
def test_model_spellings_that_ollama_treats_alike_share_a_key(spelling: str) -> None:
    assert normalize_model(spelling) == "llama3.2:latest"
    assert cache_key("/api/chat", {**CHAT, "model": spelling}) == cache_key("/api/chat", CHAT)


def test_models_on_other_hosts_and_namespaces_stay_apart() -> None:
    assert normalize_model("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M") == "hf.co/bartowski/llama-3.2-1b-gguf:q4_k_m"
    assert normalize_model("jmorgan/llama3") == "jmorgan/llama3:latest"
    assert len({normalize_model(n) for n in ("llama3.2", "llama3.2:1b", "jmorgan/llama3.2", "hf.co/x/llama3.2")}) == 4


def test_stream_keep_alive_and_performance_options_do_not_change_the_key() -> None:
    noisy = {
        **CHAT,
        "stream": False,
        "keep_alive": "1h",
        "options": {**CHAT["options"], **dict.fromkeys(PERFORMANCE_OPTIONS, 4)},
    }
    assert cache_key("/api/chat", noisy) == cache_key("/api/chat", CHAT)
    openai = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    streamed = {**openai, "stream": True, "stream_options": {"include_usage": False}}
    assert cache_key("/v1/chat/completions", streamed) == cache_key("/v1/chat/completions", openai)


def test_asking_for_a_usage_chunk_shares_the_key_and_keeps_its_old_one() -> None:
    """The proxy records every OpenAI stream with its usage, so the option is no longer part of the key; the
    key it had (the legacy key) still finds what was stored under it."""
    openai = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with_usage = {**openai, "stream_options": {"include_usage": True}}
    assert cache_key("/v1/chat/completions", with_usage) == cache_key("/v1/chat/completions", openai)
    assert legacy_key("/v1/chat/completions", with_usage) != cache_key("/v1/chat/completions", openai)
    assert legacy_key("/v1/chat/completions", openai) == cache_key("/v1/chat/completions", openai)


def test_api_defaults_spelled_out_or_left_out_share_a_key() -> None:
    plain = {"model": "llama3.2", "prompt": "hi"}
    spelled = {
        "model": "llama3.2",
        "prompt": "hi",
        "options": {},
        "raw": False,
        "system": "",
        "images": [],
        "context": None,
        "format": None,
    }
    assert cache_key("/api/generate", spelled) == cache_key("/api/generate", plain)
    assert cache_key("/api/generate", {**plain, "options": None}) == cache_key("/api/generate", plain)
    assert cache_key("/api/embed", {"model": "m", "input": "x", "truncate": True}) == cache_key(
        "/api/embed", {"model": "m", "input": "x"}
    )
    message = {"role": "user", "content": "hi"}
    assert cache_key(
        "/api/chat", {"model": "m", "messages": [{**message, "images": [], "tool_calls": None}]}
    ) == cache_key("/api/chat", {"model": "m", "messages": [message]})


def test_integral_floats_and_ints_share_a_key_but_other_numbers_do_not() -> None:
    assert cache_key("/api/chat", {**CHAT, "options": {"temperature": 0.0, "seed": 42.0}}) == cache_key(
        "/api/chat", CHAT
    )
    assert cache_key("/api/chat", {**CHAT, "options": {"temperature": 0.1, "seed": 42}}) != cache_key("/api/chat", CHAT)


@pytest.mark.parametrize(("path", "field"), [(p, f) for p, fields in OUTPUT_FIELDS.items() for f in fields])
def test_each_output_changing_field_changes_the_key(path: str, field: str) -> None:
    first, second = OUTPUT_FIELDS[path][field]
    assert cache_key(path, {**BASE[path], field: first}) != cache_key(path, {**BASE[path], field: second})
    if field != "model":
        assert cache_key(path, {**BASE[path], field: second}) != cache_key(path, BASE[path])


@pytest.mark.parametrize("option", sorted(OUTPUT_OPTIONS))
@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/embed", "/api/embeddings"])
def test_each_output_changing_option_changes_the_key(path: str, option: str) -> None:
    first, second = OUTPUT_OPTIONS[option]
    keys = {cache_key(path, {**BASE[path], "options": {option: value}}) for value in (first, second)}
    assert len(keys) == 2 and cache_key(path, BASE[path]) not in keys


def test_the_same_body_on_another_route_or_context_is_another_key() -> None:
    body = {"model": "m", "prompt": "hi"}
    assert cache_key("/api/generate", body) != cache_key("/v1/completions", body)
    assert cache_key("/api/generate", body, {"digest": "a"}) != cache_key("/api/generate", body, {"digest": "b"})


@pytest.mark.parametrize("body", [[], "text", 3, None, {}, {"model": ""}, {"model": 7}, {"model": "m", "options": []}])
def test_bodies_without_a_usable_shape_are_not_cacheable(body: Any) -> None:
    with pytest.raises(NotCacheable):
        canonical_request("/api/chat", body)


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
option_names = st.sampled_from(sorted(OUTPUT_OPTIONS) + ["mirostat", "typical_p", "min_p"])


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's members in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(sorted(ROUTES)),
    extra=st.dictionaries(st.text(min_size=1, max_size=6), json_value, max_size=4),
    options=st.dictionaries(option_names, json_value, max_size=4),
    seed=st.integers(),
)
def test_member_order_and_serialisation_never_change_the_key(
    path: str, extra: dict[str, Any], options: dict[str, Any], seed: int
) -> None:
    body = {**extra, "model": "llama3.2", "options": options}
    reordered = json.loads(json.dumps(_shuffled(body, random.Random(seed)), indent=seed % 3))
    assert cache_key(path, reordered) == cache_key(path, body)


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["/api/chat", "/api/generate", "/api/embed", "/api/embeddings"]),
    options=st.dictionaries(option_names, json_value, max_size=4),
    performance=st.dictionaries(st.sampled_from(sorted(PERFORMANCE_OPTIONS)), json_value, min_size=1),
    stream=st.booleans(),
    keep_alive=st.one_of(st.none(), st.text(max_size=4), st.integers()),
)
def test_performance_options_stream_and_keep_alive_never_change_the_key(
    path: str, options: dict[str, Any], performance: dict[str, Any], stream: bool, keep_alive: Any
) -> None:
    body = {"model": "llama3.2", "options": options}
    tuned = {**body, "stream": stream, "keep_alive": keep_alive, "options": {**options, **performance}}
    assert cache_key(path, tuned) == cache_key(path, body)


@settings(max_examples=200, deadline=None)
@given(
    option=option_names,
    value=json_value.filter(lambda v: v is not None),
    first=st.text(max_size=20),
    second=st.text(max_size=20),
)
def test_setting_an_output_option_or_changing_the_prompt_always_changes_the_key(
    option: str, value: Any, first: str, second: str
) -> None:
    body = {"model": "m", "prompt": first}
    assert cache_key("/api/generate", {**body, "options": {option: value}}) != cache_key("/api/generate", body)
    if first != second:
        assert cache_key("/api/generate", {**body, "prompt": second}) != cache_key("/api/generate", body)


IMAGE = base64.b64encode(hashlib.shake_256(b"ollacache").digest(3 * 2**20)).decode()  # 4 MiB of base64
DOCUMENT = 'Line "one"\n\tcafé ☕ 😀 \\ end.\u0001 ' * 40_000  # 1.1 M characters that JSON escapes
# Keys as Ollacache computed them before large forms were hashed in pieces: entries stored then still hit.
PINNED = [
    ("/api/chat", CHAT, None, "aff11e5305b138366705ae8fef01a0a4fc5744ec1e7404c063a8d10e7c336ded"),
    (
        "/api/chat",
        {
            "model": "llava",
            "stream": False,
            "messages": [{"role": "user", "content": "What is in this picture?", "images": [IMAGE]}],
        },
        {"credential": "abc"},
        "be681f075e8144c06149b634cd967c74aecf075bbeba85121797dc5f811eb04d",
    ),
    (
        "/api/generate",
        {"model": "qwen3", "prompt": DOCUMENT, "options": {"num_ctx": 32768, "temperature": 0.5}},
        None,
        "88714a3e89368421c9be3ef97acbcbf306256fa34c3c485fe833568ee4104839",
    ),
    (
        "/api/embed",
        {"model": "nomic-embed-text", "input": [f'item {i} "q"' for i in range(120_000)]},
        None,
        "c9d412f690351c15572d4fb0e2fe81b94657ac918da8307b09a8ce967f19bf4d",
    ),
]


@pytest.mark.parametrize(("path", "body", "context", "key"), PINNED, ids=["chat", "image", "document", "inputs"])
def test_keys_of_small_and_large_bodies_stay_what_they_were(
    path: str, body: dict[str, Any], context: dict[str, str] | None, key: str
) -> None:
    assert cache_key(path, body, context) == key


def test_the_large_bodies_above_are_hashed_in_pieces() -> None:
    for path, body, context, _ in PINNED[1:]:
        form = canonical_request(path, body, context)
        assert len(canonical_bytes(form)) > LARGE_FORM
        pieces = list(canonical_pieces(form))
        assert b"".join(pieces) == canonical_bytes(form)
        assert max(len(part) for part in pieces) <= 32 * PIECE  # never the whole text at once


json_text = st.text(alphabet=st.sampled_from('ab"\\\n\t\x00\x1féé☕😀/'), max_size=40)
json_any = st.recursive(
    st.one_of(json_leaf, json_text),
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(json_text, children, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=json_any, piece=st.integers(1, 12))
def test_the_json_text_in_pieces_is_the_json_text(value: Any, piece: int) -> None:
    form = {"v": 1, "request": value}
    assert b"".join(canonical_pieces(form, piece)) == canonical_bytes(form)


@pytest.mark.parametrize("size", [10, LARGE_FORM])
def test_a_string_utf8_cannot_encode_is_refused_whatever_the_size(size: int) -> None:
    body = {"model": "m", "prompt": "x" * size + "\ud800"}  # a lone surrogate, as json.loads can give
    with pytest.raises(UnicodeEncodeError):
        cache_key("/api/generate", body)


EMBED_ROUTES = sorted(path for path, route in ROUTES.items() if route.kind == "embed")


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(EMBED_ROUTES),
    extra=st.dictionaries(st.text(min_size=1, max_size=6), json_value, max_size=4),
    texts=st.lists(st.text(max_size=12), min_size=1, max_size=4),
    credential=st.one_of(st.none(), st.text(min_size=1, max_size=6)),
)
def test_a_batchs_inputs_are_keyed_as_each_input_asked_alone(
    path: str, extra: dict[str, Any], texts: list[str], credential: str | None
) -> None:
    """Each input of a batch finds what a request for it alone stored, and the other way round: the key made from
    the batch's shared part is the very key of the request for that one input."""
    body = {**extra, "model": "nomic-embed-text"}
    context = {"credential": credential} if credential else None
    try:
        alone = [cache_key(path, {**body, "input": [text]}, context) for text in texts]
    except (NotCacheable, UnicodeEncodeError) as refused:
        with pytest.raises(type(refused)):
            keys_per_input(path, body, texts, context)
        return
    assert keys_per_input(path, body, texts, context) == alone


def test_inputs_are_keyed_alone_when_the_request_has_no_one_place_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"model": "nomic-embed-text", "format": "ollacache-input-x"}  # the placeholder, as if guessed, before it
    monkeypatch.setattr(keys_module.secrets, "token_hex", lambda _: "x")
    assert keys_per_input("/api/embed", body, ["a", "b"], None) == [
        cache_key("/api/embed", {**body, "input": [text]}) for text in ("a", "b")
    ]
