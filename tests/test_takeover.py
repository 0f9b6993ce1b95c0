"""Port takeover happens only when Ollacache starts Ollama and nobody chose other addresses."""

from __future__ import annotations

import pytest

from core.supervision.takeover import plan

DEFAULTS = {
    "setting_on": True,
    "will_start_ollama": True,
    "default_port_free": True,
    "proxy_host": "127.0.0.1",
    "proxy_port": 11435,
    "upstream": "http://127.0.0.1:11434",
}


def test_takeover_puts_the_proxy_on_ollamas_port() -> None:
    decided = plan(**DEFAULTS)
    assert decided.takeover and (decided.proxy_port, decided.upstream) == (11434, "http://127.0.0.1:11444")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"setting_on": False}, "off"),
        ({"will_start_ollama": False}, "does not start"),
        ({"default_port_free": False}, "in use"),
        ({"proxy_port": 9000}, "explicitly"),
        ({"upstream": "http://10.0.0.2:11434"}, "explicitly"),
    ],
)
def test_otherwise_the_settings_stand(change: dict[str, object], reason: str) -> None:
    decided = plan(**{**DEFAULTS, **change})  # type: ignore[arg-type]
    assert not decided.takeover and reason in decided.reason
    assert (decided.proxy_port, decided.upstream) == (
        change.get("proxy_port", 11435),
        change.get("upstream", "http://127.0.0.1:11434"),
    )
