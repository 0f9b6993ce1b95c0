"""Port takeover: when Ollacache starts Ollama itself, it can sit on Ollama's own port (pure).

With takeover, Ollama is started on ``127.0.0.1:11444`` and the proxy listens on ``127.0.0.1:11434``,
so every tool that uses Ollama's default address is cached with no change. It applies only when all of
these hold: the setting is on, Ollacache is about to start Ollama (nothing answers at the upstream),
port 11434 is free, and the user kept the default addresses (an explicit choice is never overridden).
"""

from __future__ import annotations

from dataclasses import dataclass

OLLAMA_DEFAULT_PORT = 11434
TAKEOVER_OLLAMA_PORT = 11444
DEFAULT_UPSTREAM = f"http://127.0.0.1:{OLLAMA_DEFAULT_PORT}"
DEFAULT_PROXY_PORT = 11435


@dataclass(frozen=True)
class Plan:
    """Where the proxy listens and where Ollama is (or will be), and why."""

    proxy_host: str
    proxy_port: int
    upstream: str
    takeover: bool
    reason: str


def plan(
    *,
    setting_on: bool,
    will_start_ollama: bool,
    default_port_free: bool,
    proxy_host: str,
    proxy_port: int,
    upstream: str,
) -> Plan:
    """Decide the addresses; without takeover the settings are used as they are."""
    if not setting_on:
        return Plan(proxy_host, proxy_port, upstream, False, "port takeover is off")
    if not will_start_ollama:
        return Plan(proxy_host, proxy_port, upstream, False, "Ollacache does not start Ollama itself")
    if upstream != DEFAULT_UPSTREAM or proxy_port != DEFAULT_PROXY_PORT:
        return Plan(proxy_host, proxy_port, upstream, False, "the proxy or upstream address was set explicitly")
    if not default_port_free:
        return Plan(proxy_host, proxy_port, upstream, False, f"port {OLLAMA_DEFAULT_PORT} is in use")
    return Plan(
        proxy_host,
        OLLAMA_DEFAULT_PORT,
        f"http://127.0.0.1:{TAKEOVER_OLLAMA_PORT}",
        True,
        f"Ollama runs on {TAKEOVER_OLLAMA_PORT} and the proxy on {OLLAMA_DEFAULT_PORT}, "
        "so clients using Ollama's default address are cached",
    )
