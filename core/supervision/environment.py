"""The environment a supervised Ollama starts with.

A frozen Ollacache on Linux runs with ``LD_LIBRARY_PATH`` pointing into its own bundle (PyInstaller's
bootloader sets it, keeping the value it replaced in ``LD_LIBRARY_PATH_ORIG``). Ollama must not load the
bundle's copies of system libraries, so its environment gets the original value back, or no
``LD_LIBRARY_PATH`` at all when there was none. Run from source, the inherited environment is left as is.
"""

from __future__ import annotations

from collections.abc import Mapping

LIBRARY_PATH = "LD_LIBRARY_PATH"
SAVED_SUFFIX = "_ORIG"


def outside_environment(inherited: Mapping[str, str], *, frozen: bool) -> dict[str, str]:
    """``inherited`` as a program outside the bundle should see it: when ``frozen``, ``LD_LIBRARY_PATH``
    restored from ``LD_LIBRARY_PATH_ORIG`` (or removed) and the saved copy dropped."""
    environment = dict(inherited)
    if not frozen:
        return environment
    saved = environment.pop(LIBRARY_PATH + SAVED_SUFFIX, None)
    if saved is None:
        environment.pop(LIBRARY_PATH, None)
    else:
        environment[LIBRARY_PATH] = saved
    return environment


def ollama_environment(inherited: Mapping[str, str], extra: Mapping[str, str], *, frozen: bool) -> dict[str, str]:
    """The environment for ``ollama serve``: ours cleaned of the bundle's library path (see
    :func:`outside_environment`), then ``extra`` (the tuning, the user's overrides, ``OLLAMA_HOST``),
    which wins, so an ``LD_LIBRARY_PATH`` the user sets for Ollama is kept."""
    return {**outside_environment(inherited, frozen=frozen), **extra}
