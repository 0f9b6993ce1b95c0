"""The proxy's connections to the upstream: TCP_NODELAY set, so no request waits on a delayed ACK."""

from __future__ import annotations

import socket

from core.http.upstream import upstream_socket


def test_the_sockets_to_the_upstream_set_tcp_nodelay() -> None:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            sock = upstream_socket((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, 0)))
        except OSError:  # no IPv6 on this machine
            continue
        with sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert not sock.getblocking()
