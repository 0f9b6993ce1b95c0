"""``POST /-/explain`` and ``ollacache explain``: why a request misses, named field by field against the stored
requests of the same model and route, with exactly the key the proxy uses; it needs the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, RunningProxy, wait_for


def chat(system: str, temperature: float = 0, user: str = "What time is it?") -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "stream": False,
        "options": {"temperature": temperature},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }


STORED = chat("You are terse. The time is 2026-12-02 03:00:01.")
ASKED = chat("You are terse. The time is 2026-12-02 03:05:12.", temperature=0.7)
FARTHER = chat("You are verbose.", temperature=0.9, user="Tell me a story.")


def fill(proxy: RunningProxy, *bodies: dict[str, Any], headers: dict[str, str] | None = None) -> list[str]:
    """Send each body through the proxy (each a miss), wait until the store holds them; their keys."""
    with proxy.client() as http:
        answers = [http.post("/api/chat", json=body, headers=headers or {}) for body in bodies]
    assert [a.headers["x-cache"] for a in answers] == ["MISS"] * len(bodies)
    store = proxy.server.engine.store  # type: ignore[union-attr]
    keys = [a.headers["x-cache-key"] for a in answers]
    wait_for(lambda: {e.key for e in store.entries()} >= set(keys), "the entries to be written")
    return keys


def explain(proxy: RunningProxy, payload: object, token: bool = True) -> httpx.Response:
    return httpx.post(proxy.url + "/-/explain", json=payload, headers=proxy.auth if token else {}, timeout=30)


def test_a_miss_names_the_timestamp_and_the_temperature_that_differ(proxy: RunningProxy, fake: FakeOllama) -> None:
    stored_key, farther_key = fill(proxy, STORED, FARTHER)
    answer = explain(proxy, {"endpoint": "/api/chat", "body": ASKED})
    assert answer.status_code == 200
    found = answer.json()
    assert found["cached"] is False and found["model"] == "llama3.2:latest" and found["compared"] == 2
    assert found["canonical"]["request"]["options"] == {"temperature": 0.7}
    nearest = found["nearest"]
    assert [n["key"] for n in nearest] == [stored_key, farther_key]  # the one that differs least first
    differences = nearest[0]["differences"]
    assert [d["path"] for d in differences] == ["messages[0].content", "options.temperature"]
    assert "03:00:01" in differences[0]["stored"] and "03:05:12" in differences[0]["requested"]
    assert differences[1] == {"path": "options.temperature", "stored": 0, "requested": 0.7}
    assert fake.total_calls("/api/chat") == 2  # explaining calls no one
    with proxy.client() as http:  # the key is the one the proxy uses
        assert http.post("/api/chat", json=ASKED).headers["x-cache-key"] == found["key"]


def test_a_cached_request_says_so_with_the_proxys_key(proxy: RunningProxy) -> None:
    (key,) = fill(proxy, STORED)
    found = explain(proxy, {"endpoint": "/api/chat", "body": {**STORED, "stream": True, "keep_alive": "5m"}}).json()
    assert found["cached"] is True and found["key"] == key and found["entry"]["key"] == key
    assert found["nearest"] == [] and "request" not in found["entry"]


def test_the_headers_that_change_the_key_are_taken_into_account(proxy: RunningProxy) -> None:
    (key,) = fill(proxy, STORED, headers={"Authorization": "Bearer sk-one", "X-Cache-Namespace": "ci"})
    headers = {"Authorization": "Bearer sk-one", "X-Cache-Namespace": "ci"}
    found = explain(proxy, {"endpoint": "/api/chat", "body": STORED, "headers": headers}).json()
    assert found["cached"] is True and found["key"] == key
    assert "sk-one" not in json.dumps(found)  # the credential is hashed in the key, never shown
    found = explain(proxy, {"endpoint": "/api/chat", "body": STORED}).json()
    assert found["cached"] is False and found["nearest"][0]["differences"] == []
    assert "X-Cache-Namespace" in found["nearest"][0]["same_body"]


def test_bad_input_is_a_400_that_says_what_is_wrong(proxy: RunningProxy) -> None:
    cases = [
        ({"endpoint": "/api/tags", "body": STORED}, "endpoint must be a cached route"),
        ({"endpoint": "/api/chat"}, "body must be the request's JSON object"),
        ({"endpoint": "/api/chat", "body": {"messages": []}}, "no model name"),
        ({"endpoint": "/api/chat", "body": STORED, "headers": {"X-Cache-Namespace": "a/b"}}, "X-Cache-Namespace"),
        ({"endpoint": "/api/chat", "body": STORED, "headers": {"Accept": "x"}}, "does not change the key"),
        ({"endpoint": "/api/chat", "body": STORED, "extra": 1}, "unknown field 'extra'"),
        ([1, 2], "must be a JSON object"),
    ]
    for payload, message in cases:
        answer = explain(proxy, payload)
        assert answer.status_code == 400 and message in answer.json()["error"], payload


def test_explain_needs_the_token_even_on_loopback(proxy: RunningProxy) -> None:
    answer = explain(proxy, {"endpoint": "/api/chat", "body": STORED}, token=False)
    assert answer.status_code == 401 and "token" in answer.json()["error"]


def test_the_command_prints_the_differing_fields(proxy: RunningProxy, tmp_path: Path) -> None:
    fill(proxy, STORED)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"endpoint": "/api/chat", "body": ASKED}))
    result = subprocess.run(
        [sys.executable, "-m", "core", "explain", str(request), "--url", proxy.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "/api/chat  llama3.2:latest" in out and "not cached; the nearest of 1 stored entry" in out
    assert "2 fields differ" in out and "options.temperature: stored 0, requested 0.7" in out
    assert "messages[0].content: stored" in out and "03:05:12" in out
    request.write_text(json.dumps({"endpoint": "/api/chat", "body": STORED}))
    result = subprocess.run(
        [sys.executable, "-m", "core", "explain", str(request), "--url", proxy.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 0 and "cached: a request like this is a HIT" in result.stdout
    request.write_text(json.dumps({"endpoint": "/api/tags", "body": STORED}))
    result = subprocess.run(
        [sys.executable, "-m", "core", "explain", str(request), "--url", proxy.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert result.returncode == 2 and "endpoint must be a cached route" in result.stderr
