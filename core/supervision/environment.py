"""The environment a supervised Ollama starts with: ours as it was before a frozen bundle changed it
(Ollama must not load the bundle's copies of system libraries: see :func:`core.frozen.outside_environment`),
then the tuning and the user's overrides."""

from __future__ import annotations

from collections.abc import Mapping

from core.frozen import outside_environment


def ollama_environment(inherited: Mapping[str, str], extra: Mapping[str, str], *, frozen: bool) -> dict[str, str]:
    """The environment for ``ollama serve``: ours cleaned of the bundle's library path (see
    :func:`outside_environment`), then ``extra`` (the tuning, the user's overrides, ``OLLAMA_HOST``),
    which wins, so an ``LD_LIBRARY_PATH`` the user sets for Ollama is kept."""
    return {**outside_environment(inherited, frozen=frozen), **extra}
