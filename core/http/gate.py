"""Who may talk to the proxy: the Host rule (DNS rebinding) and the CORS rule, decided per request.

Both decisions depend only on a header value, so they are remembered per value: a client sends the
same ``Host`` and ``Origin`` on every request, and the hit path then pays a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.cache.request.requests import credential_of
from core.http.cors import CorsRule
from core.http.hostcheck import HostRule

MEMO_SIZE = 256


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer: a refusal message (403), or the CORS headers to add (empty if none).

    ``credential`` is the request's ``Authorization`` and ``x-api-key``, if any, which key the cache (never
    stored; see :func:`~core.cache.request.requests.credential_of`);
    ``user_agent`` names the client in stats and events, ``cache_control``, ``cache_ttl``, ``cache_replay``
    and ``cache_namespace`` carry the client's per-request controls (picked up here so headers are walked once).
    """

    refusal: str | None
    cors: list[tuple[bytes, bytes]]
    origin: bytes | None
    credential: bytes | None = None
    user_agent: bytes | None = None
    cache_control: bytes | None = None
    cache_ttl: bytes | None = None
    cache_replay: bytes | None = None
    cache_namespace: bytes | None = None
    authorization: bytes | None = None  # as sent: it may be one of the install's keys (core.http.guard)
    api_key: bytes | None = None


class Gate:
    """Applies ``host_rule`` (only while bound to loopback; ``None`` otherwise) and ``cors``."""

    def __init__(self, host_rule: HostRule | None, cors: CorsRule) -> None:
        self.host_rule = host_rule
        self.cors = cors
        self._hosts: dict[bytes, bool] = {}
        self._origins: dict[bytes, bool] = {}

    def admit(self, headers: Iterable[tuple[bytes, bytes]], local: bool = True) -> Admission:
        """The gate's answer for a request with ``headers``; ``local``: from this machine (the Host rule, against
        DNS rebinding, concerns only browsers on this machine, so a shared proxy applies it to them alone)."""
        host = origin = authorization = user_agent = cache_control = cache_ttl = cache_replay = None
        cache_namespace = api_key = None
        for name, value in headers:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"cache-control":
                cache_control = value
            elif name == b"x-cache-ttl":
                cache_ttl = value
            elif name == b"x-cache-replay":
                cache_replay = value
            elif name == b"x-cache-namespace":
                cache_namespace = value
        credential = credential_of(authorization, api_key)
        if (
            self.host_rule is not None
            and local
            and host is not None
            and not self._remember(self._hosts, host, self.host_rule.allows)
        ):
            return Admission(
                f"ollacache: Host {host.decode('latin-1')!r} is not allowed while bound to loopback "
                "(DNS-rebinding protection, the same rule as Ollama's)",
                [],
                None,
            )
        cors: list[tuple[bytes, bytes]] = []
        if origin is None or (host is not None and origin == b"http://" + host):
            origin = None  # the page's own server: no CORS
        elif self._remember(self._origins, origin, self.cors.allows):
            cors = CorsRule.headers(origin)
        else:
            return Admission(
                f"ollacache: origin {origin.decode('latin-1')!r} is not allowed; add it to the "
                "proxy.cors_origins setting (OLLACACHE_ORIGINS)",
                [],
                None,
            )
        return Admission(
            None,
            cors,
            origin,
            credential,
            user_agent,
            cache_control,
            cache_ttl,
            cache_replay,
            cache_namespace,
            authorization,
            api_key,
        )

    @staticmethod
    def _remember(memo: dict[bytes, bool], value: bytes, decide: Callable[[str], bool]) -> bool:
        allowed = memo.get(value)
        if allowed is None:
            allowed = decide(value.decode("latin-1"))
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[value] = allowed
        return allowed
