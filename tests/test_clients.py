"""Clients are named from their User-Agent as a user knows them, whatever the header says."""

from __future__ import annotations

import ollama
import openai
import pytest

from core.http.cors import CorsRule
from core.http.gate import Gate
from core.http.hostcheck import HostRule
from core.observe.clients import MAX_NAME, MEMO_SIZE, UNKNOWN, client_of, name_client

# The headers as the tools send them (from their own sources: ollama-python _client.py, openai-python
# _base_client.py, ollama api/client.go, aiohttp's SERVER_SOFTWARE, the browsers' published strings).
NAMED = [
    ("ollama-python/0.6.3 (x86_64 linux) Python/3.11.7", "ollama-python"),
    ("OpenAI/Python 1.54.4", "openai-python"),
    ("AsyncOpenAI/Python 3.57.0", "openai-python"),
    ("AzureOpenAI/Python 1.40.0", "openai-python"),
    ("ollama/0.12.0 (amd64 linux) Go/go1.24", "ollama-cli"),
    ("ollama-js/0.5.18 (x64 darwin Node.js/v20.11.0)", "ollama-js"),
    ("OpenAI/JS 4.73.1", "openai-node"),
    ("langchain/0.3.27", "LangChain"),
    ("langchain-ollama/0.2 ollama-python/0.4.7 (arm64 darwin) Python/3.12.1", "LangChain"),
    ("llama-index/0.12.1 python-httpx/0.27.0", "LlamaIndex"),
    ("LlamaIndex/0.10", "LlamaIndex"),
    ("open-webui/0.6.5 Python/3.11 aiohttp/3.11.11", "Open WebUI"),
    ("Continue/1.0.0 (VSCode)", "Continue"),
    ("curl/8.5.0", "curl"),
    ("python-httpx/0.28.1", "httpx"),
    ("python-requests/2.32.3", "python-requests"),
    ("Python/3.11 aiohttp/3.9.5", "aiohttp"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "node-fetch"),
    ("node-fetch", "node-fetch"),
    ("undici", "undici"),
    ("node", "undici"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "browser"),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Safari/537.36",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Safari/537.36 Edg/131.0.2903.86",
        "browser",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
        "Safari/605.1.15",
        "browser",
    ),
    ("Go-http-client/1.1", "Go-http-client"),
    ("MyTool", "MyTool"),
    ("  Zed/0.160.7 (linux; x86_64)", "Zed"),
    ('we<ird>"tool"/1', "weirdtool"),
    ("x" * 500 + "/1.0", "x" * MAX_NAME),
    ("/1.0", UNKNOWN),
    ("", UNKNOWN),
    ("   ", UNKNOWN),
    (None, UNKNOWN),
]


@pytest.mark.parametrize(("user_agent", "name"), NAMED)
def test_each_client_gets_the_name_its_users_know(user_agent: str | None, name: str) -> None:
    assert name_client(user_agent) == name
    assert client_of(None if user_agent is None else user_agent.encode("latin-1")) == name


def test_the_installed_official_clients_are_named() -> None:
    """Whatever version is installed, the header the library builds is recognised."""
    with ollama.Client(host="http://127.0.0.1:9") as client:
        assert name_client(client._client.headers["user-agent"]) == "ollama-python"
    with openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k") as client:
        assert name_client(client.user_agent) == "openai-python"


def test_names_are_remembered_within_bounds() -> None:
    client_of.cache_clear()
    for i in range(MEMO_SIZE * 3):
        assert client_of(f"tool{i}/1.0".encode()) == f"tool{i}"
    assert client_of.cache_info().currsize <= MEMO_SIZE
    client_of(b"curl/8.5.0")
    before = client_of.cache_info().hits
    assert client_of(b"curl/8.5.0") == "curl"
    assert client_of.cache_info().hits == before + 1


def test_the_gate_hands_on_the_user_agent_it_walked_past() -> None:
    gate = Gate(HostRule(), CorsRule([]))
    admission = gate.admit([(b"host", b"127.0.0.1:11434"), (b"user-agent", b"curl/8.5.0")])
    assert admission.refusal is None and admission.user_agent == b"curl/8.5.0"
    with_cors = gate.admit([(b"origin", b"http://localhost:3000"), (b"user-agent", b"Mozilla/5.0")])
    assert with_cors.cors and with_cors.user_agent == b"Mozilla/5.0"
    assert gate.admit([(b"host", b"127.0.0.1:11434")]).user_agent is None
