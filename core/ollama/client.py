"""The engine's own calls to Ollama's API, through the official ``ollama`` client.

Whatever the engine asks Ollama itself (as opposed to relaying a client's request, which the proxy does
byte for byte) goes through here or through the official client directly:

- :func:`version` / :func:`version_sync`: the one health probe, ``GET /api/version``, returning Ollama's
  version; the sync form is for code that runs before the event loop (startup, ``doctor``);
- :class:`OllamaAPI`: one address, one connection pool, for repeated calls (the supervisor's health
  checks, the tray): :meth:`~OllamaAPI.version`, :meth:`~OllamaAPI.loaded` (``ps``),
  :meth:`~OllamaAPI.installed` (``list``, with digests), :meth:`~OllamaAPI.modelfile` (``show``) and
  :meth:`~OllamaAPI.unload`.

Every failure is one :class:`OllamaError` whose message names the request (credentials in the address
hidden) and the cause, never an empty one. ``ollama`` 0.6 has no call for ``/api/version``, so
:class:`AsyncOllama` and :class:`SyncOllama` add one the way the library writes its own (``ps`` and
``list`` are the same three lines): it is the only place this module reaches under the public API.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx
import ollama
from pydantic import BaseModel

from core.config.parsing import redact

VERSION_PATH = "/api/version"
TIMEOUT_S = 2.0  # default for one call; a health probe should not wait for a busy Ollama
CAUSE_CHARS = 200  # of Ollama's error text kept in a message

InstalledModel = ollama.ListResponse.Model  # model (its name), digest, size, modified_at, details
LoadedModel = ollama.ProcessResponse.Model  # model, name, digest, size, size_vram, expires_at, context_length


class OllamaError(Exception):
    """A call to Ollama that gave no usable answer.

    Attributes:
        request: what was asked, e.g. ``GET http://127.0.0.1:11434/api/version`` (credentials hidden).
        cause: why, for people; never empty.
        status: the HTTP status when Ollama (or something at its address) answered, else None (no answer).
    """

    def __init__(self, request: str, cause: str, status: int | None = None) -> None:
        super().__init__(f"{request}: {cause}")
        self.request = request
        self.cause = cause
        self.status = status


def not_ollama(error: OllamaError) -> bool:
    """Whether ``error`` is the answer of a server that is up but does not speak Ollama's API there: no such path
    (404 or 405 from llama.cpp's server, LM Studio or vLLM, which have no ``/api/version``) or a 200 that is not
    Ollama's. No answer, a refusal (401, 403: a gateway asking for credentials) or a gateway's 5xx for a server
    behind it that is down are failures, as before."""
    return error.status in (200, 404, 405)


class _Version(BaseModel):
    version: str


class AsyncOllama(ollama.AsyncClient):
    """The official async client, plus :meth:`version`, which ``ollama`` 0.6 does not have."""

    async def version(self) -> str:
        """Ollama's version from ``GET /api/version``; raises what the client's own calls raise."""
        return (await self._request(_Version, "GET", VERSION_PATH)).version


class SyncOllama(ollama.Client):
    """The official client, plus :meth:`version`, which ``ollama`` 0.6 does not have."""

    def version(self) -> str:
        """Ollama's version from ``GET /api/version``; raises what the client's own calls raise."""
        return self._request(_Version, "GET", VERSION_PATH).version


@functools.cache
def _tls() -> ssl.SSLContext:
    """One context for every client: httpx makes its own for each otherwise, loading the CA bundle again (~10 ms of
    CPU on the event loop, for each health probe and model list)."""
    return httpx.create_ssl_context(trust_env=False)


def client_options(upstream: str) -> dict[str, Any]:
    """The official client's arguments for ``upstream``: its address, and basic auth from a ``user:password@``.

    The client keeps only scheme, host, port and path of the address it is given, so credentials in
    the URL are passed on as httpx authentication instead.
    """
    url = httpx.URL(upstream.rstrip("/"))
    # trust_env off: the proxy forwards to Ollama directly, so its own calls must not go through an HTTP_PROXY
    # of the environment either (whose refusal would read as Ollama's)
    options: dict[str, Any] = {"host": upstream.rstrip("/"), "trust_env": False, "verify": _tls()}
    if url.username or url.password:
        options.update(
            host=str(url.copy_with(username=None, password=None)), auth=httpx.BasicAuth(url.username, url.password)
        )
    return options


def named(error: BaseException) -> str:
    """An exception for people: ``Type: message``, or the type alone when it has no message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure(request: str, error: Exception) -> OllamaError:
    """The :class:`OllamaError` for what the official client raised on ``request``."""
    if isinstance(error, ollama.ResponseError):
        said = str(error.error).strip()[:CAUSE_CHARS]
        return OllamaError(
            request, f"HTTP {error.status_code}: {said}" if said else f"HTTP {error.status_code}", error.status_code
        )
    if isinstance(error, ConnectionError) and isinstance(error.__context__, httpx.HTTPError):
        return OllamaError(request, named(error.__context__))  # the client's own message hides the cause
    # JSON that is not Ollama's answer: json or pydantic says why, or the client's ``Model(**answer)`` does when the
    # JSON is not an object (another server on Ollama's port may answer anything)
    if isinstance(error, ValueError | TypeError):
        first = named(error).splitlines()[0]
        return OllamaError(request, f"not an answer from Ollama ({first})", 200)
    return OllamaError(request, named(error))


ERRORS = (ollama.ResponseError, ConnectionError, httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError)  # `failure`


def version_sync(upstream: str, *, timeout: float = TIMEOUT_S) -> str:
    """Ollama's version at ``upstream``, for code without an event loop; raises :class:`OllamaError`."""
    request = f"GET {redact(upstream.rstrip('/'))}{VERSION_PATH}"
    try:
        with SyncOllama(**client_options(upstream), timeout=timeout) as client:
            return client.version()
    except ERRORS as error:
        raise failure(request, error) from error


async def version(upstream: str, *, timeout: float = TIMEOUT_S) -> str:
    """Ollama's version at ``upstream`` (one request, its own connection); raises :class:`OllamaError`."""
    async with OllamaAPI(upstream, timeout=timeout) as api:
        return await api.version()


class OllamaAPI:
    """Ollama at one address through one :class:`AsyncOllama`; every failure is an :class:`OllamaError`.

    Use it as ``async with OllamaAPI(upstream) as api:`` or call :meth:`aclose` when done.
    """

    def __init__(self, upstream: str, *, timeout: float | httpx.Timeout | None = TIMEOUT_S) -> None:
        """``upstream``: Ollama's base URL; ``timeout``: seconds per call (None: no limit)."""
        self.upstream = upstream.rstrip("/")
        self.shown = redact(self.upstream)
        self.client = AsyncOllama(**client_options(upstream), timeout=timeout)

    async def __aenter__(self) -> OllamaAPI:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.close()

    def _request(self, method: str, path: str) -> str:
        return f"{method} {self.shown}{path}"

    async def version(self) -> str:
        """Ollama's version (``GET /api/version``)."""
        try:
            return await self.client.version()
        except ERRORS as error:
            raise failure(self._request("GET", VERSION_PATH), error) from error

    async def loaded(self) -> Sequence[LoadedModel]:
        """The models in memory now (``GET /api/ps``), the one expiring last first, as Ollama orders them."""
        try:
            return (await self.client.ps()).models
        except ERRORS as error:
            raise failure(self._request("GET", "/api/ps"), error) from error

    async def installed(self) -> Sequence[InstalledModel]:
        """The installed models with their digests (``GET /api/tags``), most recently modified first."""
        try:
            return (await self.client.list()).models
        except ERRORS as error:
            raise failure(self._request("GET", "/api/tags"), error) from error

    async def modelfile(self, model: str) -> str:
        """The Modelfile Ollama writes for ``model`` (``POST /api/show``): its ``FROM`` lines name the model's files."""
        try:
            return (await self.client.show(model)).modelfile or ""
        except ERRORS as error:
            raise failure(self._request("POST", "/api/show"), error) from error

    async def unload(self, model: str) -> None:
        """Ask Ollama to unload ``model`` now, as it documents: a generate with no prompt and ``keep_alive: 0``.

        Unloading a model that is not loaded is not an error; an unknown model is (HTTP 404).
        """
        if not model.strip():
            raise ValueError("the model name is empty")
        try:
            await self.client.generate(model, keep_alive=0, stream=False)
        except ERRORS as error:
            raise failure(self._request("POST", "/api/generate"), error) from error
