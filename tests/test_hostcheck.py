"""The Host rule refuses DNS-rebinding attempts exactly where Ollama does."""

from __future__ import annotations

import pytest

from core.http.hostcheck import HostRule, is_loopback_bind, split_host

RULE = HostRule(hostname="Workstation", addresses={"203.0.113.7", "2001:db8::7"})


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:11435",
        "127.0.0.1:11435",
        "[::1]:11435",
        "127.5.5.5",
        "10.1.2.3",
        "172.16.0.9:80",
        "192.168.1.20",
        "[fd00::1]:80",
        "0.0.0.0",
        "workstation",
        "WORKSTATION:11435",
        "app.localhost",
        "printer.local",
        "db.internal:5432",
        "203.0.113.7:11435",
        "[2001:db8::7]",
        "",
    ],
)
def test_local_names_and_addresses_are_allowed(host: str) -> None:
    assert RULE.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "evil.com",
        "evil.com:11435",
        "localhost.evil.com",
        "8.8.8.8",
        "[2606:4700::1111]:80",
        "169.254.169.254",
        "100.64.0.1",
        "internal",
        "local.evil",
    ],
)
def test_other_names_are_refused(host: str) -> None:
    assert not RULE.allows(host)


def test_host_header_parsing() -> None:
    assert [split_host(h) for h in ("a:1", "[::1]:2", "::1", "a")] == ["a", "::1", "::1", "a"]


def test_the_rule_applies_only_to_loopback_binds() -> None:
    assert is_loopback_bind("127.0.0.1") and is_loopback_bind("::1") and is_loopback_bind("localhost")
    assert not is_loopback_bind("0.0.0.0") and not is_loopback_bind("192.168.1.2")
