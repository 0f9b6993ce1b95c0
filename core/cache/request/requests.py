"""From a request body on a cached route to the facts the cache decision needs: key, model, stream mode, and
whether its answer is sampled (drawn at random) or an embedding.

A client repeats the same bodies (an agent's loop, a re-indexing run), so small bodies are remembered
with their facts, bounded in bytes (the body, its memo key, the facts with their key string and the dict
item all count): a repeated body then costs one dict lookup instead of a JSON parse, a canonical dump and
a hash. A credential (the ``Authorization`` header, and Anthropic's ``x-api-key``) is
hashed into the key, so two API keys never share entries; it is never stored. A namespace
(``X-Cache-Namespace``) is in the key too, so two namespaces never share entries; without one the key is what
it always was. The build of the model (its digest, from :class:`core.cache.request.builds.Builds`) is in the
key when it is known, so an answer of a replaced build is never served; remembered bodies are dropped whenever
a digest changes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import fields

from core.cache.request.builds import Builds
from core.cache.request.decision import Request
from core.cache.request.keys import (
    NotCacheable,
    Route,
    asks_usage,
    cache_key,
    is_sampled,
    legacy_key,
    request_model,
)
from core.cache.sizes import DICT_ITEM, deep_size

MEMO_BYTES = 2**20  # memory for request bodies whose facts are remembered (the default of cache.memo_limit)
MEMO_MAX_BODY = 16 * 1024  # bytes; larger bodies (images, long documents) are keyed each time


class RequestKeys:
    """Keys requests; ``context`` holds the output-changing server settings Ollacache applies to Ollama."""

    def __init__(
        self, context: Mapping[str, str] | None = None, builds: Builds | None = None, memo_bytes: int = MEMO_BYTES
    ) -> None:
        """``builds``: the models' digests, put in the keys (``None``: keys name the model alone); ``memo_bytes``:
        the memory the remembered bodies may take."""
        self.context: dict[str, str] = dict(context or {})
        self.memo_bytes = memo_bytes  # the memo's bound in bytes of memory (0: nothing is remembered)
        self._memo: dict[tuple[str, bytes, bytes | None, str | None], Request] = {}
        self._memo_bytes = 0
        self.builds = builds
        if builds is not None:
            builds.on_change(self.forget)  # remembered keys hold the old digests

    def facts(
        self, route: Route, body: bytes, credential: bytes | None, namespace: str | None = None
    ) -> Request | None:
        """The facts of ``body`` on ``route`` in cache ``namespace`` (``None``: the default one), or ``None``
        when it cannot be keyed (it then passes through)."""
        memo_key = (route.path, body, credential, namespace)
        return self._memo.get(memo_key) or self._key(route, body, memo_key)

    def _key(self, route: Route, body: bytes, memo_key: tuple[str, bytes, bytes | None, str | None]) -> Request | None:
        try:
            parsed = json.loads(body)
            model = request_model(parsed) or ""
            context = self.context_for(model, memo_key[2], memo_key[3])
            key = cache_key(route.path, parsed, context)
        except (ValueError, NotCacheable, RecursionError):
            return None
        stream = parsed.get("stream")
        streamed = route.kind in ("chat", "generate") and (route.stream_default if stream is None else bool(stream))
        embeds = route.kind in ("embed", "embeddings")
        usage = asks_usage(route, parsed)
        legacy = legacy_key(route.path, parsed, context) if usage else None
        request = Request(key, model, streamed, is_sampled(route, parsed), embeds, usage, legacy)
        if len(body) <= MEMO_MAX_BODY:
            cost = memo_cost(memo_key, request)
            if self._memo_bytes + cost > self.memo_bytes:
                self.forget()
            if cost <= self.memo_bytes:
                self._memo[memo_key] = request
                self._memo_bytes += cost
        return request

    def context_for(self, model: str, credential: bytes | None, namespace: str | None) -> dict[str, str]:
        """What a key holds besides the body, for a request for ``model`` with these headers: the server
        settings, the model's build when known, a hash of the credential, the namespace."""
        context = self.context
        if credential:
            context = {**context, "credential": hashlib.sha256(credential).hexdigest()}
        if namespace is not None:
            context = {**context, "namespace": namespace}
        digest = self.builds.digest(model) if self.builds is not None and model else None
        return {**context, "digest": digest} if digest else context

    def use_context(self, context: Mapping[str, str]) -> None:
        """New output-changing server settings: keys from now on include them (remembered bodies are dropped)."""
        self.context = dict(context)
        self.forget()

    @property
    def remembered(self) -> tuple[int, int]:
        """How many bodies the memo holds, and the bytes of memory they count for (at most ``memo_bytes``)."""
        return len(self._memo), self._memo_bytes

    def forget(self) -> None:
        """Drop every remembered body."""
        self._memo.clear()
        self._memo_bytes = 0


def credential_of(authorization: bytes | None, api_key: bytes | None) -> bytes | None:
    """What keys a request's entries apart by who sent it: its ``Authorization`` header as it is (so entries
    stored under one keep their keys), with its ``x-api-key`` added when it has one."""
    if api_key is None:
        return authorization
    return (authorization or b"") + b"\nx-api-key: " + api_key


def memo_cost(memo_key: tuple[str, bytes, bytes | None, str | None], request: Request) -> int:
    """The memory one remembered body holds: its memo key (route, body, credential, namespace), its
    facts and their strings, and the dict item (the route's path is shared by every body, so not counted)."""
    return deep_size(memo_key) - sys.getsizeof(memo_key[0]) + request_bytes(request) + DICT_ITEM


_REQUEST_FIELDS = tuple(f.name for f in fields(Request))


def request_bytes(request: Request) -> int:
    """What a request's facts hold in memory (the object, its key and model strings)."""
    return sys.getsizeof(request) + sum(sys.getsizeof(getattr(request, name)) for name in _REQUEST_FIELDS)
