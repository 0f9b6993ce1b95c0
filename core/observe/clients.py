"""Which tool sent a request, named from its ``User-Agent`` header (pure: no I/O).

The names are the ones a user knows their tools by: ``ollama-python`` for the official Python client
(``ollama-python/0.6.3 (x86_64 linux) Python/3.11.7``), ``openai-python`` for OpenAI's (``OpenAI/Python
1.x``, also ``AsyncOpenAI`` and ``AzureOpenAI``), ``ollama-cli`` for the ``ollama`` command
(``ollama/0.12.0 (amd64 linux) Go/go1.24``), ``browser`` for any web browser, and so on
(`FRAMEWORKS`, `PREFIXES`, `LIBRARIES`). A framework that names itself anywhere in the header (``langchain``,
``llama-index``, ``open-webui``)
wins over the HTTP library it runs on. Anything else is named by its first product token, cut to
`MAX_NAME` characters of a safe alphabet; no header at all is ``unknown``.

`client_of` takes the raw header bytes and remembers its answer per value (a client sends the same
header on every request), so the hit path pays one cache lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

UNKNOWN = "unknown"
MAX_NAME = 32  # characters kept of an unrecognised product token
MEMO_SIZE = 256  # distinct header values remembered

#: (what the lower-cased header contains, the client's name) for frameworks and apps, which win over
#: the HTTP library they run on wherever they name themselves in the header.
FRAMEWORKS: tuple[tuple[str, str], ...] = (
    ("langchain", "LangChain"),
    ("llama-index", "LlamaIndex"),
    ("llama_index", "LlamaIndex"),
    ("llamaindex", "LlamaIndex"),
    ("open-webui", "Open WebUI"),
    ("open webui", "Open WebUI"),
    ("openwebui", "Open WebUI"),
)

#: (how the lower-cased header starts, the client's name): product tokens that name a client exactly.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("ollama/", "ollama-cli"),
    ("continue", "Continue"),
    ("mozilla/", "browser"),
)

#: (what the lower-cased header contains, the client's name) for clients and HTTP libraries, in order.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("ollama-python/", "ollama-python"),
    ("ollama-js/", "ollama-js"),
    ("openai/python", "openai-python"),  # OpenAI, AsyncOpenAI, AzureOpenAI, AsyncAzureOpenAI
    ("openai/js", "openai-node"),
    ("anthropic/python", "anthropic-python"),  # Anthropic, AsyncAnthropic
    ("anthropic/js", "anthropic-node"),
    ("python-httpx/", "httpx"),
    ("python-requests/", "python-requests"),
    ("aiohttp/", "aiohttp"),
    ("node-fetch", "node-fetch"),
    ("undici", "undici"),
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("firefox/", "browser"),
    ("edg/", "browser"),
    ("chrome/", "browser"),
    ("safari/", "browser"),
)

#: Whole headers that name a client: Node's built-in fetch (undici) sends just ``node``.
EXACT: dict[str, str] = {"node": "undici"}

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def name_client(user_agent: str | None) -> str:
    """The client's name for a ``User-Agent`` value (None or blank: ``unknown``)."""
    if user_agent is None or not user_agent.strip():
        return UNKNOWN
    lowered = user_agent.strip().lower()
    if (exact := EXACT.get(lowered)) is not None:
        return exact
    for needle, name in FRAMEWORKS:
        if needle in lowered:
            return name
    for prefix, name in PREFIXES:
        if lowered.startswith(prefix):
            return name
    for needle, name in LIBRARIES:
        if needle in lowered:
            return name
    return _first_product(user_agent)


@lru_cache(maxsize=MEMO_SIZE)
def client_of(user_agent: bytes | None) -> str:
    """`name_client` for the raw header bytes, remembered per value."""
    return name_client(None if user_agent is None else user_agent.decode("latin-1"))


def _first_product(user_agent: str) -> str:
    """The first product token's name (before ``/`` or a space), in a safe alphabet and bounded length."""
    token = user_agent.strip().split(None, 1)[0].split("/", 1)[0]
    token = _UNSAFE.sub("", token)[:MAX_NAME]
    return token or UNKNOWN
