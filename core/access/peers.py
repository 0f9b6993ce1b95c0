"""Which clients need one of the install's API keys (pure).

A client on this machine (a loopback address: 127.0.0.0/8, ::1, or an IPv4 loopback address mapped into IPv6,
as a dual-stack socket reports it) is exempt unless keys are required ``always``; every other client needs a key
while the proxy is shared. A connection without an address (a Unix socket) is on this machine.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

Require = Literal["remote", "always"]
REQUIRE: tuple[Require, ...] = ("remote", "always")


@lru_cache(maxsize=1024)
def is_local(host: str | None) -> bool:
    """Whether a client at ``host`` (the peer's address as the server reports it) is on this machine."""
    if host is None or host == "":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name or anything unexpected: not known to be local, so it is treated as remote
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def needs_key(host: str | None, require: Require) -> bool:
    """Whether a request from ``host`` must carry an API key (``require``: ``remote`` or ``always``)."""
    return key_needed(is_local(host), require)


def key_needed(local: bool, require: Require) -> bool:
    """`needs_key` for a client already known to be on this machine (``local``) or not."""
    return require == "always" or not local
