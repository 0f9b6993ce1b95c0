"""The API keys through the control API (GET/POST /-/keys, DELETE /-/keys/{name}) on a real engine: made with a
name and shown once, listed without the key or its hash, refused plainly for a bad or taken name, revoked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.access.keyring import KEYS_FILE, KeyRing
from core.control.client import ControlClient, ControlError
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}


def config_dir() -> Path:
    return Path(os.environ["OLLACACHE_CONFIG_DIR"])


@pytest.fixture
def control(proxy: RunningProxy) -> Iterator[ControlClient]:
    """The command line's client on the engine of ``proxy`` (sharing off: keys are made before it is on)."""
    with ControlClient(proxy.url, proxy.token) as client:
        yield client


def test_a_key_made_is_shown_once_and_listed_by_name_with_when_it_was_made(control: ControlClient) -> None:
    made = control.add_key("alice-laptop")
    assert made["name"] == "alice-laptop" and made["key"].startswith("oc-") and made["created"] > 0
    assert KeyRing(config_dir()).name_of(made["key"].encode()) == "alice-laptop"  # the key the file knows
    listed = control.keys()
    assert listed == [{"name": "alice-laptop", "created": made["created"], "last_used": None}]


def test_the_list_never_holds_a_key_or_its_hash(control: ControlClient, proxy: RunningProxy) -> None:
    secrets = [control.add_key(name)["key"] for name in ("alice", "bob")]
    hashes = [key["sha256"] for key in json.loads((config_dir() / KEYS_FILE).read_text())["keys"]]
    answer = httpx.get(proxy.url + "/-/keys", headers=proxy.auth).text
    assert [key["name"] for key in json.loads(answer)["keys"]] == ["alice", "bob"]  # oldest first
    for secret in [*secrets, *hashes]:
        assert secret not in answer
    assert all(set(key) == {"name", "created", "last_used"} for key in json.loads(answer)["keys"])


def test_a_bad_or_taken_name_is_a_400_with_a_plain_sentence(control: ControlClient, proxy: RunningProxy) -> None:
    control.add_key("alice")
    for name, says in [
        ("alice", "a key named 'alice' exists; revoke it first or choose another name"),
        ("two words", "'two words' is not a key name: use 1 to 64 letters, digits"),
        ("", "'' is not a key name"),
        ("x" * 65, "is not a key name"),
    ]:
        with pytest.raises(ControlError) as refused:
            control.add_key(name)
        assert refused.value.status == 400 and says in str(refused.value), name
    for body in ({}, {"name": 7}):
        answer = httpx.post(proxy.url + "/-/keys", json=body, headers=proxy.auth)
        assert answer.status_code == 400 and answer.json() == {
            "error": 'expected {"name": the name of a person or a device, such as "alice-laptop"}'
        }
    assert [key["name"] for key in control.keys()] == ["alice"]  # nothing made by a refusal


def test_revoking_removes_the_key_and_an_unknown_name_is_a_404(control: ControlClient) -> None:
    secret = control.add_key("alice")["key"]
    control.add_key("bob")
    assert control.revoke_key("alice") == {"revoked": "alice"}
    assert [key["name"] for key in control.keys()] == ["bob"]
    assert KeyRing(config_dir()).name_of(secret.encode()) is None
    with pytest.raises(ControlError) as refused:
        control.revoke_key("alice")
    assert refused.value.status == 404 and "no key is named 'alice'" in str(refused.value)


def test_every_keys_call_needs_the_token_even_on_loopback(proxy: RunningProxy) -> None:
    with httpx.Client(base_url=proxy.url) as http:
        for method, path, body in [
            ("GET", "/-/keys", None),
            ("POST", "/-/keys", {"name": "x"}),
            ("DELETE", "/-/keys/x", None),
        ]:
            assert http.request(method, path, json=body).status_code == 401, (method, path)
    assert not (config_dir() / KEYS_FILE).exists()


def test_a_key_made_through_the_api_opens_a_proxy_that_asks_every_client_for_one(
    upstream: tuple[FakeOllama, str],
) -> None:
    """The key works at once on a proxy that requires one, its use is listed, and revoked it is refused."""
    with proxy_in_thread(upstream[1], **{"proxy.require_key": "always"}) as proxy:
        with ControlClient(proxy.url, proxy.token) as control:
            secret = control.add_key("ci-runner")["key"]
            with httpx.Client(base_url=proxy.url, timeout=30) as http:
                assert http.post("/api/chat", json=CHAT).status_code == 401
                assert http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {secret}"}).is_success
                (listed,) = control.keys()
                assert listed["name"] == "ci-runner" and listed["last_used"] is not None  # noted by the guard's ring
                control.revoke_key("ci-runner")
                # the engine's one ring forgets it at once (another process would within RELOAD_S)
                assert (
                    http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {secret}"}).status_code == 401
                )
