"""DNS-rebinding protection: the ``Host`` header rule Ollama applies while bound to loopback.

The same rule as ``allowedHostsMiddleware`` in Ollama's ``server/routes.go``: loopback, private,
unspecified and this machine's own interface addresses, ``localhost``, the machine's host name, and
names under ``.localhost``, ``.local`` and ``.internal`` are allowed; anything else is a page on
another site trying to reach the local model through a name it controls.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import psutil

LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
# Go's netip.Addr.IsPrivate (RFC 1918 and RFC 4193), narrower than Python's ip.is_private.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def local_addresses() -> frozenset[str]:
    """The IP addresses of this machine's interfaces, as strings."""
    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(address.address.split("%", 1)[0])
    return frozenset(found)


def split_host(header: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:80`` -> ``::1``, ``a:1`` -> ``a``)."""
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else header
    host, sep, port = header.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return header


class HostRule:
    """Decides whether a ``Host`` header may reach a loopback-bound server."""

    def __init__(self, hostname: str | None = None, addresses: Iterable[str] | None = None) -> None:
        self.hostname = (hostname if hostname is not None else socket.gethostname()).lower()
        self.addresses = frozenset(addresses) if addresses is not None else local_addresses()

    def allows(self, header: str) -> bool:
        host = split_host(header).lower()
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host in ("", "localhost", self.hostname) or host.endswith(LOCAL_SUFFIXES)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        private = any(ip in network for network in PRIVATE_NETWORKS if network.version == ip.version)
        return ip.is_loopback or private or ip.is_unspecified or str(ip) in self.addresses


def is_loopback_bind(host: str) -> bool:
    """Whether a listen address is loopback only (where the Host rule applies)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
