"""Opt-in per-request tuning for an Ollama whose environment Ollacache does not control.

With ``tuning.inject_options`` on, a cached-route request that sets no ``options.num_thread`` is
forwarded with the tuned one. The client's own value always wins. Caveat (see the README): Ollama
reloads a model whenever a request's runner options differ from the loaded ones, so clients that reach
Ollama directly with other values make the model reload back and forth. ``num_thread`` is not part of
the cache key, so injecting it never splits the cache.
"""

from __future__ import annotations

from core.cache.request.amend import amended


def with_threads(body: bytes, num_thread: int) -> bytes:
    """``body`` with ``options.num_thread`` set when the client set none; unchanged if it is not a JSON object."""
    return amended(body, "options", "num_thread", num_thread, keeps=lambda _: True)
