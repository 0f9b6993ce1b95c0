"""Sharing the proxy with API keys: who needs a key, keys made, listed and revoked, the key checked on real
sockets and consumed, and a real client on another network address (a network namespace of the test's own)."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
import trustme

from core.access import keyring
from core.access.keyring import RELOAD_S, KeyRefused, KeyRing
from core.access.limits import RateLimit
from core.access.peers import is_local, needs_key
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, RunningProxy, proxy_in_thread, proxy_process, wait_for

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False, "options": {"seed": 1}}


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket reports IPv4 loopback this way
        (None, True),  # a Unix socket: this machine
        ("10.0.0.7", False),
        ("192.168.1.20", False),
        ("::ffff:192.168.1.20", False),
        ("fe80::1%eth0", False),
        ("2001:db8::1", False),
        ("0.0.0.0", False),
        ("not-an-address", False),
    ],
)
def test_which_peers_are_exempt(host: str | None, local: bool) -> None:
    assert is_local(host) is local
    assert needs_key(host, "remote") is not local
    assert needs_key(host, "always")


def test_keys_are_kept_as_hashes_only_in_a_private_file(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    secret = ring.add("alice-laptop")
    assert secret.startswith("oc-") and len(secret) > 40
    text = ring.path.read_text()
    assert secret not in text and "alice-laptop" in text
    assert stat.S_IMODE(ring.path.stat().st_mode) == 0o600
    assert ring.name_of(secret.encode()) == "alice-laptop" and ring.name_of(b"oc-guess") is None
    with pytest.raises(KeyRefused, match="exists"):
        ring.add("alice-laptop")
    with pytest.raises(KeyRefused, match="not a key name"):
        ring.add("two words")
    ring.flush()
    assert ring.keys()[0].last_used > 0  # written in a batch, not on the request
    assert ring.name_of(secret.encode()) == "alice-laptop"  # and again: known without hashing it
    other = KeyRing(tmp_path)  # another process: the command line
    other.revoke("alice-laptop")
    assert ring.name_of(secret.encode(), now=time.monotonic() + RELOAD_S) is None  # the file is read again


def test_a_key_revoked_while_it_is_being_checked_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys file read again by another thread (housekeeping, the control API) in the middle of a key's first
    check: the key may pass that once, but it is not remembered among the keys read after its revocation."""
    ring = KeyRing(tmp_path)
    secret = ring.add("tablet")
    hashed = keyring.digest

    def revoked_meanwhile(sent: bytes) -> str:
        KeyRing(tmp_path).revoke("tablet")  # the command line
        ring.keys()  # and the running proxy's other thread reads the file
        return hashed(sent)

    monkeypatch.setattr(keyring, "digest", revoked_meanwhile)
    ring.name_of(secret.encode())
    monkeypatch.setattr(keyring, "digest", hashed)
    assert ring.name_of(secret.encode(), now=time.monotonic() + RELOAD_S) is None


def test_the_keys_command_adds_lists_and_revokes(tmp_path: Path) -> None:
    def keys(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core", "keys", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    added = keys("add", "phone")
    assert added.returncode == 0
    secret = added.stdout.strip().splitlines()[-1].split()[-1]
    assert secret.startswith("oc-")
    listed = keys("list")
    assert "phone" in listed.stdout and "never" in listed.stdout and secret not in listed.stdout
    assert keys("add", "phone").returncode == 1
    assert keys("revoke", "phone").returncode == 0 and "No API keys" in keys("list").stdout
    assert "no key is named" in keys("revoke", "phone").stderr


@pytest.fixture
def keyed(upstream: tuple[FakeOllama, str]) -> Iterator[tuple[RunningProxy, KeyRing]]:
    """A proxy that asks every client for a key (``--require-key always``), and its key ring."""
    ring = KeyRing(Path(os.environ["OLLACACHE_CONFIG_DIR"]))
    with proxy_in_thread(upstream[1], **{"proxy.require_key": "always"}) as proxy:
        yield proxy, ring


def test_without_a_key_nothing_is_forwarded_and_each_route_answers_in_its_own_shape(
    keyed: tuple[RunningProxy, KeyRing], fake: FakeOllama
) -> None:
    proxy, _ = keyed
    with httpx.Client(base_url=proxy.url, timeout=30) as http:
        native = http.post("/api/chat", json=CHAT)
        assert native.status_code == 401 and "keys add" in native.json()["error"]
        assert native.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/api/tags").status_code == 401
        openai_shape = http.post("/v1/chat/completions", json={"model": "llama3.2", "messages": []})
        assert openai_shape.status_code == 401 and openai_shape.json()["error"]["type"] == "api_error"
        anthropic_shape = http.post("/v1/messages", json={"model": "llama3.2", "messages": [], "max_tokens": 5})
        assert anthropic_shape.json()["type"] == "error" and anthropic_shape.json()["error"]["message"]
        wrong = http.post("/api/chat", json=CHAT, headers={"Authorization": "Bearer oc-not-ours"})
        assert wrong.status_code == 401
        assert http.get("/-/health").status_code == 200  # the control API is this machine's, as before
    routes = ("/api/chat", "/v1/chat/completions", "/v1/messages")
    assert [fake.total_calls(path) for path in routes] == [0, 0, 0]


def test_a_key_is_consumed_so_everyone_sharing_gets_each_others_hits(
    keyed: tuple[RunningProxy, KeyRing], fake: FakeOllama
) -> None:
    proxy, ring = keyed
    alice, bob = ring.add("alice"), ring.add("bob")
    with ollama.Client(host=proxy.url, headers={"Authorization": f"Bearer {alice}"}) as client:
        first = client.chat(model="llama3.2", messages=CHAT["messages"], options={"seed": 1})
    with httpx.Client(base_url=proxy.url, timeout=30, headers={"Authorization": f"Bearer {bob}"}) as http:
        second = http.post("/api/chat", json=CHAT)
        tags = http.get("/api/tags")
    assert second.status_code == 200 and second.headers["x-cache"] == "HIT"
    assert second.json()["message"]["content"] == first.message.content and tags.status_code == 200
    assert fake.total_calls("/api/chat") == 1
    assert fake.header_names("/api/chat") and all("authorization" not in names for names in fake.header_names())


def test_a_revoked_key_stops_working_within_seconds(keyed: tuple[RunningProxy, KeyRing], fake: FakeOllama) -> None:
    proxy, ring = keyed
    secret = ring.add("tablet")
    auth = {"Authorization": f"Bearer {secret}"}
    assert httpx.post(proxy.url + "/api/chat", json=CHAT, headers=auth, timeout=30).status_code == 200
    KeyRing(ring.path.parent).revoke("tablet")
    wait_for(
        lambda: httpx.post(proxy.url + "/api/chat", json=CHAT, headers=auth, timeout=30).status_code == 401,
        "the revoked key refused",
    )


def test_sharing_keeps_loopback_clients_as_they_were(upstream: tuple[FakeOllama, str], fake: FakeOllama) -> None:
    """With ``--share`` and keys required from remote clients only, this machine's tools need no key, and an
    Authorization meant for another upstream keys the cache and is forwarded as before."""
    with proxy_process(upstream[1], "--share") as proxy, httpx.Client(base_url=proxy.url, timeout=30) as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
        theirs = http.post("/api/chat", json=CHAT, headers={"Authorization": "Bearer upstream-token"})
        assert theirs.status_code == 200 and theirs.headers["x-cache"] == "MISS"  # another credential, another key
        assert http.get("/-/health").status_code == 200
    assert any("shared on the network" in line for line in proxy.output)


NETNS = "ocshare"


@pytest.fixture
def remote_client() -> Iterator[tuple[str, str]]:
    """A network namespace of the test's own, joined to this one by a veth pair with addresses of its own
    (10.213.x.0/30, never the machine's interfaces): (its name, the address the proxy has on that link)."""
    tag = str(os.getpid() % 10000)
    name, outside, inside = f"{NETNS}{tag}", f"och{tag}", f"ocn{tag}"
    net = f"10.213.{int(tag) % 250}"
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
        ["ip", "link", "set", inside, "netns", name],
        ["ip", "addr", "add", f"{net}.1/30", "dev", outside],
        ["ip", "link", "set", outside, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", f"{net}.2/30", "dev", inside],
        ["ip", "netns", "exec", name, "ip", "link", "set", inside, "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        yield name, f"{net}.1"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=30)


def from_namespace(namespace: str, url: str, headers: dict[str, str]) -> dict[str, object]:
    """A request sent from inside ``namespace``: its status and body, as that client saw them."""
    script = (
        "import httpx, json, sys; r = httpx.request(sys.argv[1], sys.argv[2], headers=json.loads(sys.argv[3]),"
        " json=json.loads(sys.argv[4]) if sys.argv[4] else None, timeout=30);"
        " print(json.dumps({'status': r.status_code, 'body': r.text, 'cache': r.headers.get('x-cache')}))"
    )
    method, body = ("POST", json.dumps(CHAT)) if url.endswith("/api/chat") else ("GET", "")
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", script, method, url, json.dumps(headers), body],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_client_on_another_address_needs_a_key(
    upstream: tuple[FakeOllama, str], fake: FakeOllama, remote_client: tuple[str, str]
) -> None:
    namespace, address = remote_client
    ring = KeyRing(Path(os.environ["OLLACACHE_CONFIG_DIR"]))
    secret = ring.add("laptop")
    with proxy_process(upstream[1], "--share") as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        base = f"http://{address}:{port}"
        refused = from_namespace(namespace, base + "/api/chat", {})
        assert refused["status"] == 401 and "keys add" in str(refused["body"])
        assert fake.total_calls("/api/chat") == 0  # nothing forwarded, nothing looked up
        served = from_namespace(namespace, base + "/api/chat", {"Authorization": f"Bearer {secret}"})
        assert served["status"] == 200 and served["cache"] == "MISS"
        control = from_namespace(namespace, base + "/-/health", {"Authorization": f"Bearer {proxy.token}"})
        assert control["status"] == 403  # the control API stays on this machine, token or not
        local = httpx.post(proxy.url + "/api/chat", json=CHAT, timeout=30)
        assert local.headers["x-cache"] == "HIT"  # this machine's tools, no key, share the remote client's entry


def test_a_key_may_send_a_minutes_worth_at_once_then_one_request_at_the_rate() -> None:
    limit = RateLimit(3)  # three a minute: one each 20 s once the first three are spent
    assert [limit.take("alice", 100.0) for _ in range(4)] == [0, 0, 0, 20]
    assert limit.take("bob", 100.0) == 0  # each key its own
    assert limit.take("alice", 110.0) == 10 and limit.take("alice", 120.0) == 0
    assert RateLimit(0).take("alice", 0.0) == 0  # no limit


def test_each_key_is_counted_and_held_to_its_rate(upstream: tuple[FakeOllama, str], fake: FakeOllama) -> None:
    ring = KeyRing(Path(os.environ["OLLACACHE_CONFIG_DIR"]))
    alice, bob = ring.add("alice"), ring.add("bob")
    flags = {"proxy.require_key": "always", "proxy.rate_limit": "2"}
    with proxy_in_thread(upstream[1], **flags) as proxy, httpx.Client(base_url=proxy.url, timeout=30) as http:
        as_alice = [http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {alice}"}) for _ in range(3)]
        assert [r.status_code for r in as_alice] == [200, 200, 429]
        assert int(as_alice[2].headers["retry-after"]) > 0 and "2 requests a minute" in as_alice[2].json()["error"]
        assert http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {bob}"}).status_code == 200
        keys: Any = wait_for(lambda: len(proxy.stats()["keys"]) == 2, "both keys counted") and proxy.stats()["keys"]  # type: ignore[arg-type]
        metrics = http.get("/-/metrics").text
    assert keys["alice"]["misses"] == 1 and keys["alice"]["hits"] == 1 and keys["alice"]["time_saved_s"] > 0
    assert keys["bob"]["hits"] == 1
    assert 'ollacache_key_requests_total{key="alice",outcome="hit"} 1.0' in metrics
    assert fake.total_calls("/api/chat") == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    """A CA of the test's own and a certificate it issued for a network name and 127.0.0.1, with its key."""
    ca = trustme.CA()
    issued = ca.issue_cert("ollacache.lan", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    return ca, cert, key


def test_a_certificate_serves_https_and_this_machines_tools_trust_it(
    upstream: tuple[FakeOllama, str], fake: FakeOllama, certificate: tuple[trustme.CA, Path, Path]
) -> None:
    ca, cert, key = certificate
    env = {"OLLACACHE_TLS_CERT": str(cert), "OLLACACHE_TLS_KEY": str(key)}
    with proxy_process(upstream[1], "--share", env=env) as proxy:
        assert proxy.url.startswith("https://")
        url = proxy.url.replace("0.0.0.0", "127.0.0.1")  # the address the certificate names
        trusting = ssl.create_default_context(cafile=str(_ca_file(ca, cert)))  # a computer that trusts the CA
        with httpx.Client(verify=trusting, timeout=30) as http:
            assert [http.post(url + "/api/chat", json=CHAT).headers["x-cache"] for _ in range(2)] == [
                "MISS",
                "HIT",
            ]
        with pytest.raises(httpx.HTTPError):
            httpx.post(url.replace("https://", "http://") + "/api/chat", json=CHAT, timeout=30)
        stats = subprocess.run(
            [sys.executable, "-m", "core", "stats", "--json"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["totals"]["hits"] == 1  # the command line trusts the engine's certificate
    assert not any("plain HTTP" in line for line in proxy.output)


def _ca_file(ca: trustme.CA, beside: Path) -> Path:
    path = beside.parent / "ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


@pytest.mark.parametrize(
    ("cert", "key", "said"),
    [
        ("cert.pem", None, "set proxy.tls_key (--tls-key) too"),
        (None, "key.pem", "set proxy.tls_cert (--tls-cert) too"),
        ("missing.pem", "key.pem", "does not exist"),
        ("key.pem", "cert.pem", "cannot be used together"),
    ],
)
def test_a_certificate_that_cannot_serve_is_said_before_serving(
    certificate: tuple[trustme.CA, Path, Path], cert: str | None, key: str | None, said: str
) -> None:
    folder = certificate[1].parent
    flags = [*(["--tls-cert", str(folder / cert)] if cert else []), *(["--tls-key", str(folder / key)] if key else [])]
    done = subprocess.run(
        [sys.executable, "-m", "core", "serve", "--port", "0", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and said in done.stderr
