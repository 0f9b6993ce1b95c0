"""The gate in front of every request: the Host rule against DNS rebinding, CORS, and the credential it passes on."""

from __future__ import annotations

from core.http.cors import CorsRule
from core.http.gate import MEMO_SIZE, Gate
from core.http.hostcheck import HostRule


def gate(extra_origins: tuple[str, ...] = ()) -> Gate:
    return Gate(HostRule(), CorsRule(list(extra_origins)))


def test_a_local_host_is_admitted_and_its_credential_passed_on() -> None:
    admission = gate().admit([(b"host", b"localhost:11435"), (b"authorization", b"Bearer k")])
    assert admission.refusal is None and admission.cors == [] and admission.credential == b"Bearer k"


def test_a_rebinding_name_is_refused_with_the_reason() -> None:
    admission = gate().admit([(b"host", b"attacker.example:11435")])
    assert admission.refusal is not None and "DNS-rebinding" in admission.refusal


def test_off_loopback_there_is_no_host_rule() -> None:
    open_gate = Gate(None, CorsRule([]))
    assert open_gate.admit([(b"host", b"attacker.example:11435")]).refusal is None


def test_an_allowed_origin_gets_cors_headers_and_a_foreign_one_is_refused_naming_the_setting() -> None:
    allowed = gate().admit([(b"host", b"127.0.0.1:11435"), (b"origin", b"http://localhost:3000")])
    assert allowed.refusal is None and allowed.origin == b"http://localhost:3000"
    assert (b"access-control-allow-origin", b"http://localhost:3000") in allowed.cors
    foreign = gate().admit([(b"host", b"127.0.0.1:11435"), (b"origin", b"https://evil.example")])
    assert foreign.refusal is not None and "proxy.cors_origins" in foreign.refusal
    assert gate(("https://*.example",)).admit([(b"origin", b"https://app.example")]).refusal is None


def test_a_same_origin_request_needs_no_cors() -> None:
    admission = gate().admit([(b"host", b"127.0.0.1:11435"), (b"origin", b"http://127.0.0.1:11435")])
    assert admission.refusal is None and admission.cors == [] and admission.origin is None


def test_decisions_are_remembered_per_value_within_a_bound() -> None:
    g = gate()
    for port in range(MEMO_SIZE * 2):  # a client cycling through Host values cannot grow memory without bound
        assert g.admit([(b"host", f"localhost:{port}".encode())]).refusal is None
    assert len(g._hosts) <= MEMO_SIZE
    assert g.admit([(b"host", b"evil.example")]).refusal is not None
