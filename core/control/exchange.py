"""What both control clients share (:mod:`core.control.client`): the engine's address (a wildcard listen
address dialled as loopback), the token, each described call turned into a request, and each answer read
into its value or into a :class:`ControlError` whose message is one sentence a person can act on.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.config.parsing import redact
from core.control import running
from core.control import token as tokens
from core.control.answers import Health
from core.control.calls import DEFAULT_TIMEOUT_S, _Call
from core.control.tls import local_verify

if TYPE_CHECKING:
    from core.config.settings import Settings

T = TypeVar("T")


class ControlError(Exception):
    """A control call failed; the message says why in one sentence.

    ``status`` is the HTTP status of the answer, or ``None`` when none came; ``unreachable`` is true
    when nothing listens at the address at all (so no engine runs there); ``fields`` maps each field the
    engine refused (a setting's name) to its message, for a form to show next to the field.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        unreachable: bool = False,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.unreachable = unreachable
        self.fields: dict[str, str] = dict(fields or {})


def _dialable(url: str) -> str:
    """``url`` without a trailing slash, a wildcard listen address (0.0.0.0, ::) replaced by loopback."""
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return url  # not a URL; the first call says so
    if host in ("0.0.0.0", "::"):
        loopback = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        parts = parts._replace(netloc=loopback + (f":{port}" if port else ""))
    return urlunsplit(parts)


def upstream_of(health: Health, configured: str) -> str:
    """The Ollama a running engine forwards to, from its ``/-/health``. The engine shows it with any
    ``user:password@`` part hidden; when that is the ``configured`` upstream, the configured URL (which
    can still be dialled) is returned instead."""
    shown = str(health["upstream"].get("url") or health["proxy"].get("upstream") or configured)
    return configured if redact(configured) == shown else shown


class ClientBase:
    """What both clients share: the address, the token, and reading answers into values or errors."""

    def __init__(
        self, url: str, token: str | None, *, token_file: Path | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        self.url = _dialable(url)
        self.token = token
        self.token_file = token_file
        self.verify = verify  # how an https engine's certificate is checked (core.control.tls)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> Self:
        """A client of the engine at ``url``, else where ``running.json`` says one serves, else the
        settings' address; with the token from the config directory (if there is one), trusting the engine's
        own HTTPS certificate when it serves one."""
        address = url or running.engine_url(settings.config_dir, settings.url)
        token_file = settings.config_dir / tokens.TOKEN_FILE
        verify = local_verify(settings["proxy.tls_cert"])
        return cls(address, tokens.read(settings.config_dir), token_file=token_file, verify=verify)

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: _Call[Any]) -> httpx.Request:
        headers = dict(call.headers)
        if call.needs_token and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_S, read=call.timeout)
        try:
            return http.build_request(
                call.method, self.url + call.path, params=call.params, json=call.body, headers=headers, timeout=timeout
            )
        except httpx.InvalidURL:
            raise self._bad_address() from None

    def _error(self, message: str, status: int | None = None, *, unreachable: bool = False) -> ControlError:
        return ControlError(message, url=self.url, status=status, unreachable=unreachable)

    def _bad_address(self) -> ControlError:
        return self._error(f"{self.url} is not the address of an engine; give one such as http://127.0.0.1:11435")

    def _not_ollacache(self, what: str, status: int | None) -> ControlError:
        return self._error(f"{what}; is {self.url} an Ollacache engine?", status)

    def _failure(self, error: httpx.HTTPError, call: _Call[Any]) -> ControlError:
        """The one-sentence error for a request that got no usable answer."""
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            return self._error(f"no proxy answers at {self.url}; start one with `ollacache serve`", unreachable=True)
        if isinstance(error, httpx.UnsupportedProtocol):
            return self._bad_address()
        if isinstance(error, httpx.TimeoutException):
            return self._error(
                f"the engine at {self.url} did not answer {call.method} {call.path} within {call.timeout:g} s"
            )
        return self._not_ollacache(f"the exchange with {self.url} broke off ({error or type(error).__name__})", None)

    def _refusal(self, response: httpx.Response) -> ControlError:
        """The error for an answer with a failing status."""
        status = response.status_code
        if status == 401:
            where = f" ({self.token_file})" if self.token_file else ""
            return self._error(
                f"the engine at {self.url} refused the control token: the token file in the "
                f"Ollacache config directory{where} is missing or wrong",
                status,
            )
        try:
            body = response.json()
        except ValueError:
            return self._not_ollacache(f"{self.url} answered HTTP {status} with no JSON", status)
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return self._not_ollacache(f"{self.url} answered HTTP {status} without an Ollacache error", status)
        error = self._error(f"the engine at {self.url} refused: {body['error']}", status)
        errors = body.get("errors")
        if isinstance(errors, dict):
            error.fields = {str(name): str(message) for name, message in errors.items()}
        return error

    def _read(self, call: _Call[T], response: httpx.Response) -> T:
        """The value ``call`` returns from ``response`` (already read), or the error it means."""
        if response.status_code >= 400:
            raise self._refusal(response)
        if call.text:
            return cast(T, response.text)
        try:
            body = response.json()
        except ValueError:
            raise self._not_ollacache(
                f"the answer from {self.url} to {call.path} is not JSON", response.status_code
            ) from None
        if not isinstance(body, dict) or any(key not in body for key in call.keys):
            raise self._not_ollacache(
                f"the answer from {self.url} to {call.path} is not what Ollacache sends", response.status_code
            )
        return cast(T, body[call.pick] if call.pick is not None else body)

    def _check_stream(self, response: httpx.Response) -> None:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise self._not_ollacache(f"{self.url} answered /-/events with no event stream", response.status_code)
