"""The control API's calls are declared once (core.control.endpoints): the routes, their handlers, both clients'
calls and the README's table all come from that table, so none of them can list a call the others lack."""

from __future__ import annotations

from pathlib import Path

import httpx

from core.control.calls import Calls, _Method
from core.control.endpoints import BY_NAME, ENDPOINTS, readme_table
from core.control.handlers import HANDLERS
from tests.harness import RunningProxy

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_call_has_a_handler_and_every_handler_a_declaration() -> None:
    assert set(HANDLERS) | {"events"} == set(BY_NAME)
    assert len(BY_NAME) == len(ENDPOINTS)  # no name declared twice
    assert len({(e.method, e.path) for e in ENDPOINTS}) == len(ENDPOINTS)


def test_both_clients_call_what_is_declared() -> None:
    """Each of the clients' calls is a declared one, by name, with its method, path and token."""
    names = {name for name, value in vars(Calls).items() if isinstance(value, _Method)}
    assert names | {"events"} == set(BY_NAME)
    assert Calls.pause.make().method == BY_NAME["pause"].method and Calls.pause.make().needs_token
    assert Calls.delete_entry.make("a/b").path == "/-/entries/a%2Fb"
    assert not Calls.health.make().needs_token and Calls.health.make().path == "/-/health"


def test_the_readme_lists_exactly_the_declared_calls() -> None:
    assert readme_table() in (ROOT / "README.md").read_text()


def test_a_declared_call_answers_only_its_own_method(proxy: RunningProxy) -> None:
    with httpx.Client(base_url=proxy.url) as http:
        assert http.get("/-/health").status_code == 200
        refused = http.post("/-/health")
        assert refused.status_code == 405 and refused.json() == {"error": "POST is not allowed on /-/health"}
        assert http.post("/-/pause").status_code == 401  # a call that changes state: the token, even on loopback
        assert http.get("/-/tune").status_code == 200 and http.post("/-/tune").status_code == 401
