"""An entry keeps the request it answers, and a store lists its live entries lazily, all or one model's."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cache.entry import MAGIC, CorruptEntry, Entry
from core.cache.storage import diskstore
from core.cache.storage.diskstore import DiskStore
from core.cache.storage.store import NullStore
from tests.test_store import Clock, make_entry

REQUEST = b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}'


def test_an_entry_keeps_the_request_it_answers_after_its_chunks() -> None:
    entry = make_entry(request=REQUEST)
    blob = entry.encode()
    assert blob.endswith(REQUEST)
    decoded = Entry.decode(blob)
    assert decoded == entry and decoded.request == REQUEST and decoded.chunks == entry.chunks
    assert "request" not in decoded.info()  # listings never show the prompt


def test_a_blob_written_before_requests_were_kept_still_decodes() -> None:
    blob = make_entry().encode()
    assert b"request_length" not in blob  # an entry without a request is written as before
    assert Entry.decode(blob).request == b""


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:-1], lambda b: b + b"x", lambda b: b.replace(b'"request_length":', b'"request_length":"x","_":')],
)
def test_a_damaged_request_segment_is_refused(damage) -> None:  # type: ignore[no-untyped-def]
    blob = make_entry(request=REQUEST).encode()
    assert blob.startswith(MAGIC)
    with pytest.raises(CorruptEntry):
        Entry.decode(damage(blob))


def test_entries_walks_every_live_entry_or_one_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskstore, "PAGE", 3)  # several pages
    clock = Clock(1_700_000_000.0)
    store = DiskStore(tmp_path / "c", 10**8, clock=clock)
    for n in range(7):
        store.put(make_entry(f"a{n}", request=REQUEST))
    for n in range(4):
        store.put(make_entry(f"b{n}", model="qwen3:0.6b"))
    store.put(make_entry("old", expires=clock.now + 10))
    clock.now += 20  # "old" has expired
    walk = store.entries()
    assert iter(walk) is walk  # a generator: read as it goes
    assert sorted(e.key for e in walk) == sorted([f"a{n}" for n in range(7)] + [f"b{n}" for n in range(4)])
    assert sorted(e.key for e in store.entries("qwen3:0.6b")) == [f"b{n}" for n in range(4)]
    assert all(e.request == REQUEST for e in store.entries("llama3.2:latest"))
    assert list(store.entries("nosuch:latest")) == []
    store.close()


def test_the_null_store_has_no_entries() -> None:
    assert list(NullStore("x", "broken").entries()) == []


def test_the_proxy_stores_the_body_the_client_sent_never_its_credential(proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.harness import wait_for

    body = (
        b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"temperature":0}}'
    )
    with proxy.client() as http:
        answer = http.post("/api/chat", content=body, headers={"Authorization": "Bearer sk-secret"})
    assert answer.headers["x-cache"] == "MISS"
    store = proxy.server.engine.store
    stored = wait_for(lambda: list(store.entries()), "the entry to be written")
    assert [e.request for e in stored] == [body]
    assert b"sk-secret" not in stored[0].encode()
