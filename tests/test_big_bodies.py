"""Big request bodies (an image in base64): read whole, keyed like any other, cached and replayed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import MutableMapping
from typing import Any

from core.cache.request.keys import cache_key
from core.http.relay import read_body
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy

IMAGE = base64.b64encode(hashlib.shake_256(b"a picture").digest(6 * 2**20)).decode()  # 8 MiB of base64
CHAT = {
    "model": "llama3.2",
    "stream": False,
    "messages": [{"role": "user", "content": "What is in this picture?", "images": [IMAGE]}],
}


def scripted(parts: list[bytes]) -> Any:
    """An ASGI ``receive`` that delivers ``parts`` as the chunks of one request body."""
    messages = [{"type": "http.request", "body": part, "more_body": n < len(parts) - 1} for n, part in enumerate(parts)]

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    return receive


def test_a_body_in_many_chunks_is_read_whole_and_unchanged() -> None:
    body = json.dumps(CHAT).encode()
    parts = [body[start : start + 65536] for start in range(0, len(body), 65536)] + [b""]
    assert asyncio.run(read_body(scripted(parts))) == body
    assert asyncio.run(read_body(scripted([b"{}"]))) == b"{}"
    assert asyncio.run(read_body(scripted([b"", b""]))) == b""


def test_a_big_image_request_is_cached_and_replayed(proxy: RunningProxy, upstream: tuple[FakeOllama, str]) -> None:
    fake = upstream[0]
    body = json.dumps(CHAT).encode()
    with proxy.client() as http:
        first = http.post("/api/chat", content=body, headers={"content-type": "application/json"})
        second = http.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert fake.received("/api/chat") == [CHAT]  # the upstream got the body as sent, once


def test_keying_a_big_body_twice_gives_one_key() -> None:
    again = json.loads(json.dumps(CHAT, indent=1))
    assert cache_key("/api/chat", again) == cache_key("/api/chat", CHAT)
