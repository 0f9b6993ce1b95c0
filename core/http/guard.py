"""The key check of a shared proxy: which requests must carry one of the install's API keys, and the key consumed.

While the proxy is shared (``proxy.share``), or when every client must send a key (``proxy.require_key =
always``), a request that needs one (:func:`core.access.peers.needs_key`) and has none of ours as
``Authorization: Bearer <key>`` is refused with a 401 in its route's own error format: nothing is forwarded and
nothing is looked up; a key that sends more than ``proxy.rate_limit`` requests a minute gets a 429 with
``Retry-After``. Our key is consumed: it is taken out of the request before it is keyed or forwarded, so
everyone sharing gets each other's hits and Ollama never sees it. Any other ``Authorization`` (meant for a real
upstream) is left as it was, keying the cache as before. The control API answers only on this machine.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field

from core.access.keyring import KeyRing
from core.access.limits import RateLimit
from core.access.peers import Require, is_local, key_needed
from core.http.gate import Admission
from core.http.upstream import Scope

NO_KEY = (
    "ollacache: this proxy is shared with API keys: send one as Authorization: Bearer <key> "
    "(OLLAMA_API_KEY for Ollama's clients); the owner makes one with `ollacache keys add NAME`"
)
WARM_UP = "(warm-up)"  # how the engine's own warm-up is counted among the keys
CONTROL_LOCAL = "ollacache: the control API answers only on the computer Ollacache runs on"
CHALLENGE = (b"www-authenticate", b'Bearer realm="ollacache"')


@dataclass(frozen=True, slots=True)
class Refused:
    """A request the guard turns away: its status, what it is told, and the headers that go with it."""

    status: int
    message: str
    headers: tuple[tuple[bytes, bytes], ...]


NO_KEY_REFUSAL = Refused(401, NO_KEY, (CHALLENGE,))


@dataclass
class Guard:
    """The keys of ``keyring``, required from the clients ``require`` names, each key held to ``limit``."""

    keyring: KeyRing
    require: Require
    limit: RateLimit = field(default_factory=lambda: RateLimit(0))
    token: str | None = None  # the engine's control token: its own warm-up sends it where every client needs a key

    @staticmethod
    def local(scope: Scope) -> bool:
        client = scope.get("client")
        return is_local(client[0] if client else None)

    def admit(self, scope: Scope, admission: Admission, local: bool) -> str | Refused | None:
        """The name of our key the request carried, taken out of its headers; None when it carried none and
        needs none; or why it is refused: it needs a key and has none of ours (401), or its key sent more than
        ``proxy.rate_limit`` allows (429). The request's credential without our key is
        :func:`~core.cache.request.requests.credential_of` ``(None, admission.api_key)``."""
        authorization = admission.authorization
        name = None
        if authorization is not None and authorization[:7].lower() == b"bearer ":
            secret = authorization[7:].strip()
            own = self.token is not None and local and hmac.compare_digest(secret, self.token.encode())
            name = WARM_UP if own else self.keyring.name_of(secret)
        if name is None:
            return NO_KEY_REFUSAL if key_needed(local, self.require) else None
        if self.limit.per_minute and (wait := self.limit.take(name, time.monotonic())):
            message = f"ollacache: the key {name} sent more than {self.limit.per_minute} requests a minute"
            return Refused(429, message + f"; try again in {wait} s", ((b"retry-after", str(wait).encode()),))
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        return name
