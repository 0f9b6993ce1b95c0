"""Batch embeddings cached per input (pure): each input's vector is an entry of its own.

A request to ``/api/embed`` or ``/v1/embeddings`` whose ``input`` is a text or a list of texts is split into
its inputs. Each distinct input has the key of the same request asking for that input alone (``"input":
[text]``), so a vector is found whichever batch asked for it, and a request for one text finds what a batch
stored. What the proxy sends upstream is only the inputs it has no vector for, each once; the answer it gives
has every vector at its input's index.

An entry keeps the answer to its input alone in the route's format: the upstream's own answer when the batch
held only that input, otherwise one made from the batch's answer without token counts (a batch's count is of
all its inputs together, so no share of it is anyone's). An answer composed from entries reports the work of
the upstream call this request made, and nothing else: its durations and prompt tokens on ``/api/embed``, its
``usage`` on ``/v1/embeddings`` (zero when every vector was stored). Input given as token ids (OpenAI's lists
of integers) is not split: such a request is cached whole, as any other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.cache.request.keys import Route, keys_per_input
from core.cache.request.wire import dumps

_CALL_STATS = ("total_duration", "load_duration", "prompt_eval_count")


class WrongAnswer(ValueError):
    """The upstream's answer does not hold one vector for each input sent."""


@dataclass(frozen=True)
class Batch:
    """An embedding request split into its inputs: ``inputs`` as sent, ``unique`` the distinct ones in the order
    first seen, ``keys`` their entries' keys, ``at`` the index in ``unique`` of each input."""

    route: Route
    body: Mapping[str, Any]
    inputs: list[str]
    unique: list[str]
    keys: list[str]
    at: list[int]

    def upstream_body(self, wanted: Sequence[int]) -> bytes:
        """The request for the distinct inputs ``wanted`` (indices in ``unique``), everything else as sent."""
        return json.dumps({**self.body, "input": [self.unique[i] for i in wanted]}, ensure_ascii=False).encode()

    def request_of(self, index: int) -> bytes:
        """The request for distinct input ``index`` alone, which its entry keeps."""
        return json.dumps({**self.body, "input": [self.unique[index]]}, ensure_ascii=False).encode()


def split(route: Route, body: Any, context: Mapping[str, str] | None) -> Batch | None:
    """``body`` on an embedding route split into its inputs, or None when it is not a text or a list of texts
    (it is then cached whole)."""
    if route.kind != "embed" or not isinstance(body, dict):
        return None
    given = body.get("input")
    inputs = [given] if isinstance(given, str) else given
    if not isinstance(inputs, list) or not inputs or not all(isinstance(text, str) for text in inputs):
        return None
    keyed = dict(body)
    if route.api == "openai" and str(keyed.get("encoding_format") or "float").lower() == "float":
        keyed.pop("encoding_format", None)  # the API's default, spelled out or not
    first: dict[str, int] = {}
    for text in inputs:
        first.setdefault(text, len(first))
    unique = list(first)
    keys = keys_per_input(route.path, keyed, unique, context)
    return Batch(route, body, inputs, unique, keys, [first[text] for text in inputs])


class _Raw(str):
    """A JSON number as the upstream wrote it: a float32 printed by Go in its shortest form reads back as
    another float64 when Python prints it again, so vectors are carried as the upstream's own text."""


def _loads(data: bytes) -> Any:
    return json.loads(data, parse_float=_Raw, parse_int=_Raw)


def _text(vector: Any) -> bytes:
    """A vector's JSON text: a list of numbers as written, or a base64 string."""
    if isinstance(vector, list) and all(isinstance(number, _Raw) for number in vector):
        return ("[" + ",".join(vector) + "]").encode()
    if isinstance(vector, str) and not isinstance(vector, _Raw):
        return dumps(vector)
    raise WrongAnswer("a vector is neither a list of numbers nor base64 text")


def vectors(route: Route, answer: bytes, count: int) -> tuple[list[bytes], dict[str, Any]]:
    """The ``count`` vectors of an upstream answer, in order, each as its JSON text, and the answer itself.

    Raises :class:`WrongAnswer` when it holds another number of vectors or is not the route's answer."""
    try:
        whole, raw = json.loads(answer), _loads(answer)
    except ValueError:
        raise WrongAnswer("the upstream's answer is not JSON") from None
    if not isinstance(whole, dict):
        raise WrongAnswer("the upstream's answer is not a JSON object")
    if route.api == "ollama":
        found = raw.get("embeddings")
    else:
        data = raw.get("data") or []
        found = [item.get("embedding") for item in sorted(data, key=lambda item: int(item.get("index") or 0))]
    if not isinstance(found, list) or len(found) != count:
        got = len(found) if isinstance(found, list) else 0
        raise WrongAnswer(f"the upstream answered {got} vectors for {count} inputs")
    return [_text(vector) for vector in found], whole


def stored_vector(route: Route, body: bytes) -> bytes:
    """The JSON text of the vector an entry keeps (the answer to its input alone).

    Found by its place in the compact JSON that Ollama and this module write (a vector holds no bracket or
    quote of its own), without parsing hundreds of numbers; any other layout is parsed."""
    name = b'"embeddings":[' if route.api == "ollama" else b'"embedding":'
    at = body.find(name)
    if at >= 0:
        start = at + len(name)
        opening = body[start : start + 1]
        if opening in (b"[", b'"'):
            end = body.find(b"]" if opening == b"[" else b'"', start + 1)
            if end > start:
                return body[start : end + 1]
    whole = _loads(body)
    return _text(whole["embeddings"][0] if route.api == "ollama" else whole["data"][0]["embedding"])


def entry_body(route: Route, model: str, vector: bytes) -> bytes:
    """The answer to one input alone, made from a batch's answer: its vector, no token counts."""
    if route.api == "ollama":
        return b'{"model":' + dumps(model) + b',"embeddings":[' + vector + b"]}"
    return b'{"object":"list","data":[' + _item(vector, 0) + b'],"model":' + dumps(model) + b"}"


def _item(vector: bytes, index: int) -> bytes:
    return b'{"object":"embedding","embedding":' + vector + b',"index":' + str(index).encode() + b"}"


def compose(route: Route, model: str, found: Sequence[bytes], called: Mapping[str, Any] | None) -> bytes:
    """The answer to the whole batch from ``found`` (each input's vector as JSON text, in order), reporting the
    work of the upstream answer ``called`` (None: every vector was stored)."""
    if route.api == "ollama":
        stats = b"".join(
            b',"' + name.encode() + b'":' + dumps(called[name]) for name in _CALL_STATS if called and called.get(name)
        )
        return b'{"model":' + dumps(model) + b',"embeddings":[' + b",".join(found) + b"]" + stats + b"}"
    usage = (called or {}).get("usage") or {"prompt_tokens": 0, "total_tokens": 0}
    data = b",".join(_item(vector, index) for index, vector in enumerate(found))
    return b'{"object":"list","data":[' + data + b'],"model":' + dumps(model) + b',"usage":' + dumps(usage) + b"}\n"


def prompt_tokens(route: Route, answer: Mapping[str, Any]) -> int:
    """The prompt tokens an upstream answer counts."""
    count = (
        answer.get("prompt_eval_count") if route.api == "ollama" else (answer.get("usage") or {}).get("prompt_tokens")
    )
    return count if isinstance(count, int) and not isinstance(count, bool) else 0
