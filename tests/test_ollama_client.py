"""The engine's own calls to Ollama through the official client: the version probe, loaded, installed, unload.

Against the fake Ollama, and for answers no Ollama gives, a tiny stdlib HTTP server on 127.0.0.1 that
answers every request with one configured reply and keeps the request headers it saw.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ollama
import pytest

from core.ollama.client import OllamaAPI, OllamaError, not_ollama, version, version_sync
from tests.fakes.ollama_server import FakeOllama


class Canned(ThreadingHTTPServer):
    """Answers every GET with ``status`` and ``body``; ``seen`` holds each request's headers."""

    daemon_threads = True

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _CannedHandler)
        self.status, self.body = status, body
        self.seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CannedHandler(BaseHTTPRequestHandler):
    server: Canned

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.seen.append({key.lower(): value for key, value in self.headers.items()})
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture
def canned() -> Iterator[Canned]:
    server = Canned(200, b"<html>not Ollama</html>")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_port() -> Iterator[str]:
    """The address of a port nothing listens on (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- the version probe ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_probe_returns_ollamas_version_sync_or_not(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(version="0.13.1")
    assert version_sync(url) == "0.13.1" and await version(url + "/") == "0.13.1"
    assert fake.total_calls("/api/version") == 2


@pytest.mark.asyncio
async def test_nothing_listening_names_the_address_and_the_cause(closed_port: str) -> None:
    with pytest.raises(OllamaError) as caught:
        version_sync(closed_port)
    assert caught.value.status is None
    assert str(caught.value).startswith(f"GET {closed_port}/api/version: ConnectError")
    with pytest.raises(OllamaError) as caught:
        await version(closed_port)
    assert caught.value.status is None and caught.value.cause.startswith("ConnectError")


def test_a_cause_without_a_message_is_named_by_its_type(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    fake.configure(hang=True)  # accepts, never answers
    try:
        with pytest.raises(OllamaError) as caught:
            version_sync(url, timeout=0.2)
    finally:
        fake.reset()
    assert caught.value.status is None and caught.value.cause.startswith("ReadTimeout")
    assert caught.value.cause.strip() and str(caught.value) == f"GET {url}/api/version: {caught.value.cause}"


def test_an_http_error_keeps_the_status_and_what_was_said(upstream: tuple[FakeOllama, str]) -> None:
    url = upstream[1] + "/elsewhere"  # gin's 404 for an unknown route
    with pytest.raises(OllamaError) as caught:
        version_sync(url)
    assert caught.value.status == 404 and caught.value.cause == "HTTP 404: 404 page not found"


def test_an_answer_that_is_not_ollamas_is_an_error_too(canned: Canned) -> None:
    with pytest.raises(OllamaError, match=r"not an answer from Ollama \(JSONDecodeError") as caught:
        version_sync(canned.url)
    assert caught.value.status == 200
    canned.body = b'{"status": "ok"}'  # JSON, but no version
    with pytest.raises(OllamaError, match=r"not an answer from Ollama \(ValidationError"):
        version_sync(canned.url)


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [b'["0.12.0"]', b'"0.12.0"', b"null"])
async def test_json_that_is_not_an_object_is_not_an_answer_either(canned: Canned, body: bytes) -> None:
    """Another server on Ollama's port (it was free while Ollama restarted) may answer anything: the probe says
    so, as it does for any answer that is not Ollama's, rather than failing the health check."""
    canned.body = body
    with pytest.raises(OllamaError, match=r"not an answer from Ollama \(TypeError") as caught:
        version_sync(canned.url)
    assert caught.value.status == 200
    async with OllamaAPI(canned.url) as api:
        for call in (api.version, api.loaded, api.installed):
            with pytest.raises(OllamaError, match=r"not an answer from Ollama") as caught:
                await call()
            assert not_ollama(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "server"),
    [
        (404, b'{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}', True),  # llama.cpp's
        (405, b"Method Not Allowed", True),
        (200, b"<html>a web page</html>", True),
        (401, b'{"error":"a key is needed"}', False),  # a gateway in front of an Ollama, refusing us
        (403, b"forbidden", False),
        (502, b"Bad Gateway", False),  # a gateway whose Ollama is down: nothing serves there
    ],
)
def test_a_server_that_is_up_but_not_ollama_is_told_from_one_that_refuses_or_is_down(
    canned: Canned, status: int, body: bytes, server: bool
) -> None:
    canned.status, canned.body = status, body
    with pytest.raises(OllamaError) as caught:
        version_sync(canned.url)
    assert not_ollama(caught.value) is server


def test_the_probe_goes_to_ollama_directly_whatever_proxy_the_environment_names(
    canned: Canned, monkeypatch: pytest.MonkeyPatch
) -> None:
    canned.body = b'{"version":"0.12.0"}'
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert version_sync(canned.url) == "0.12.0"


def test_credentials_in_the_address_are_sent_and_never_shown(canned: Canned) -> None:
    canned.status, canned.body = 500, b'{"error":"boom"}'
    address = canned.url.replace("http://", "http://me:secret@")
    with pytest.raises(OllamaError) as caught:
        version_sync(address)
    assert "secret" not in str(caught.value) and str(caught.value).startswith("GET http://***@127.0.0.1:")
    assert caught.value.cause == "HTTP 500: boom"
    assert canned.seen[-1]["authorization"] == "Basic " + base64.b64encode(b"me:secret").decode()


# --- for the tray: loaded, installed, unload ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_loaded_models_carry_the_digests_of_the_installed_ones(upstream: tuple[FakeOllama, str]) -> None:
    fake, url = upstream
    async with OllamaAPI(url) as api, ollama.AsyncClient(url) as client:
        assert await api.loaded() == []
        await client.generate("llama3.2", "hi", options={"num_predict": 2})
        installed = {model.model: model.digest for model in await api.installed()}
        loaded = await api.loaded()
    assert list(installed) == ["llama3.2:latest", "qwen3:0.6b", "nomic-embed-text:latest"]
    assert all(digest and len(digest) == 64 for digest in installed.values())
    assert [(model.name, model.digest) for model in loaded] == [("llama3.2:latest", installed["llama3.2:latest"])]
    assert loaded[0].expires_at is not None and loaded[0].size_vram


@pytest.mark.asyncio
async def test_unload_asks_ollama_the_documented_way_and_the_model_leaves_memory(
    upstream: tuple[FakeOllama, str],
) -> None:
    fake, url = upstream
    async with OllamaAPI(url) as api, ollama.AsyncClient(url) as client:
        await client.generate("qwen3:0.6b", "hi", options={"num_predict": 2})
        assert [model.name for model in await api.loaded()] == ["qwen3:0.6b"]
        await api.unload("qwen3:0.6b")
        assert await api.loaded() == []
        await api.unload("qwen3:0.6b")  # not loaded: nothing to do, no error
        with pytest.raises(OllamaError) as caught:
            await api.unload("mistral:7b")
        with pytest.raises(ValueError, match="empty"):
            await api.unload(" ")
    assert caught.value.status == 404 and "model 'mistral:7b' not found" in caught.value.cause
    assert str(caught.value).startswith(f"POST {url}/api/generate: HTTP 404")
    unloads = fake.received("/api/generate")[1:]
    assert unloads[0] == {"model": "qwen3:0.6b", "stream": False, "keep_alive": 0}  # no prompt


@pytest.mark.asyncio
async def test_the_tray_calls_name_the_address_when_ollama_is_away(closed_port: str) -> None:
    async with OllamaAPI(closed_port) as api:
        for call, path in ((api.loaded, "GET {}/api/ps"), (api.installed, "GET {}/api/tags")):
            with pytest.raises(OllamaError) as caught:
                await call()
            assert str(caught.value).startswith(path.format(closed_port) + ": ConnectError")
        with pytest.raises(OllamaError, match=f"POST {closed_port}/api/generate: ConnectError"):
            await api.unload("llama3.2")
