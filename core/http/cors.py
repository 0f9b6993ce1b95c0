"""CORS for browser clients, answered by the proxy itself with Ollama's own defaults (pure).

Ollama allows ``localhost``, ``127.0.0.1`` and ``0.0.0.0`` on any port over http and https, the
``app://``, ``file://``, ``tauri://``, ``vscode-webview://`` and ``vscode-file://`` schemes, browser
extensions, and whatever ``OLLAMA_ORIGINS`` adds (``*`` allows all; one ``*`` inside a pattern is a
wildcard). The proxy applies the same rule, extended by the ``proxy.cors_origins`` setting, to hits,
misses and pass-through alike: it strips ``Origin`` before forwarding so that the answer does not depend
on how the upstream happens to be configured, and adds the CORS headers itself. A request from an origin
outside the rule is refused with 403, as Ollama does.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_ORIGINS: tuple[str, ...] = tuple(
    f"{scheme}://{host}{port}"
    for host in ("localhost", "127.0.0.1", "0.0.0.0")
    for scheme in ("http", "https")
    for port in ("", ":*")
) + ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")
EXTENSION_SCHEMES = ("chrome-extension://", "safari-extension://", "moz-extension://", "ms-browser-extension://")
ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
ALLOW_HEADERS = (
    b"Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
    b"x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, "
    b"x-stainless-helper-method, x-stainless-lang, x-stainless-os, x-stainless-package-version, "
    b"x-stainless-poll-helper, x-stainless-retry-count, x-stainless-runtime, "
    b"x-stainless-runtime-version, x-stainless-timeout, Cache-Control, X-Cache-Namespace, "
    b"X-Cache-TTL, X-Cache-Replay"
)
EXPOSE_HEADERS = b"X-Cache, X-Cache-Key, Age"
MAX_AGE_S = b"43200"


class CorsRule:
    """Which browser origins may call the proxy, and the headers that say so."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        patterns = [origin.strip().lower() for origin in (*extra, *DEFAULT_ORIGINS) if origin.strip()]
        self.allow_all = "*" in patterns
        self.exact = frozenset(p for p in patterns if "*" not in p)
        self.wildcards = tuple(tuple(p.split("*", 1)) for p in patterns if "*" in p and p != "*")

    def allows(self, origin: str) -> bool:
        origin = origin.lower()
        if self.allow_all or origin in self.exact or origin.startswith(EXTENSION_SCHEMES):
            return True
        return any(
            origin.startswith(prefix) and origin.endswith(suffix) and len(origin) >= len(prefix) + len(suffix)
            for prefix, suffix in self.wildcards
        )

    @staticmethod
    def headers(origin: bytes) -> list[tuple[bytes, bytes]]:
        """Headers for an answer to an allowed origin."""
        return [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSE_HEADERS),
        ]

    @staticmethod
    def preflight(origin: bytes) -> list[tuple[bytes, bytes]]:
        """Headers for the answer (204) to an allowed preflight ``OPTIONS`` request."""
        return [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE_S),
            (b"content-length", b"0"),
        ]
