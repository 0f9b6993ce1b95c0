"""``ollacache clear``: remove cached entries (all, or one model's), or with ``--stale`` those answered by a
model build that is no longer installed, or with ``--older-than AGE`` those stored longer ago.

Through the running proxy (``POST /-/clear``, with ``{"stale": true}`` for stale builds, which the proxy tells
from Ollama's model list); only when no proxy runs at the configured address, on the cache directory
directly (for stale builds with the model list read from the upstream here). Nothing is removed when the
current builds cannot be told.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

from core.cache.request.builds import Builds
from core.cache.request.keys import normalize_model
from core.cache.storage.opening import open_store_or_fail
from core.cache.storage.store import StoreError
from core.config.parsing import parse_seconds
from core.config.settings import Settings
from core.control.client import ControlClient, ControlError
from core.units import plural

AGE_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))  # the largest that divides an age
EXIT_UNREACHABLE = 1
EXIT_USAGE = 2


def clear(
    settings: Settings, url: str | None, model: str | None, stale: bool = False, older_than: str | None = None
) -> int:
    """Clear the entries (of ``model``, or all; only stale builds' with ``stale``; only those stored more than
    ``older_than`` ago) through the proxy, or directly when none runs at the configured address."""
    if model is not None and not model.strip():
        print("ollacache: --model needs a model name such as llama3.2", file=sys.stderr)
        return EXIT_USAGE
    age = None
    if older_than is not None:
        try:
            age = parse_seconds(older_than)
        except ValueError:
            print(
                f'ollacache: --older-than needs an age such as "7d", "12h" or "90m", not {older_than!r}',
                file=sys.stderr,
            )
            return EXIT_USAGE
    try:
        with ControlClient.from_settings(settings, url) as client:
            cleared = client.clear(model, stale=stale, older_than=age)
    except ControlError as error:
        if error.unreachable and url is None:  # with --url, clearing a directory instead would surprise
            return _directly(settings, model, stale, age)
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(said(stale, age)(cleared["removed"], cleared["model"]))
    return 0


def said(stale: bool, age: int | None) -> Callable[..., str]:
    """The sentence for what a clear of this kind did."""
    if age is not None:
        return lambda removed, model, directory=None: older_text(removed, model, age, directory)
    return stale_text if stale else removed_text


def _directly(settings: Settings, model: str | None, stale: bool, age: int | None = None) -> int:
    """The clear on the cache directory itself (no proxy runs); for stale builds, once the model list is read."""
    model = normalize_model(model) if model else None
    builds = None
    if stale:
        builds = Builds(settings["proxy.upstream"], None)
        asyncio.run(_read(builds))
        if not builds.tracked or builds.checked is None:
            why = builds.reason or f"the model list at {builds.shown} cannot be read: {builds.error}"
            print(f"ollacache: no proxy running, and {why}; nothing removed", file=sys.stderr)
            return EXIT_UNREACHABLE
    try:
        store = open_store_or_fail(settings)
    except StoreError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        if builds is not None:
            stale_keys = [entry.key for entry in store.entries(model) if builds.stale(entry.model, entry.digest)]
            removed = sum(store.delete(key) for key in stale_keys)
        elif age is not None:
            cutoff = time.time() - age
            old_keys = [entry.key for entry in store.entries(model) if entry.created < cutoff]
            removed = sum(store.delete(key) for key in old_keys)
        else:
            removed = store.clear(model)
    finally:
        store.close()
    print("no proxy running; " + said(stale, age)(removed, model, str(settings.cache_dir)))
    return 0


async def _read(builds: Builds) -> None:
    try:
        await builds.refresh()
    finally:
        await builds.stop()


def stale_text(removed: int, model: str | None, directory: str | None = None) -> str:
    """What a clear of stale builds did, as a sentence."""
    where = f" from {directory}" if directory else ""
    of = f" of {model}" if model else ""
    if removed == 0:
        return f"nothing removed: no entries{of} of a replaced or removed model build{where}"
    noun = "entry" if removed == 1 else "entries"
    return f"removed {removed} {noun}{of} answered by a replaced or removed model build{where}"


def older_text(removed: int, model: str | None, age_s: int, directory: str | None = None) -> str:
    """What a clear of entries older than ``age_s`` seconds did, as a sentence."""
    where = f" from {directory}" if directory else ""
    of = f" of {model}" if model else ""
    age = next(plural(age_s // size, unit) for size, unit in AGE_UNITS if age_s % size == 0)
    if removed == 0:
        return f"nothing removed: no entries{of} stored more than {age} ago{where}"
    return f"removed {removed} {'entry' if removed == 1 else 'entries'}{of} stored more than {age} ago{where}"


def removed_text(removed: int, model: str | None, directory: str | None = None) -> str:
    """What a clear did, as a sentence: "removed 2 entries of qwen3:0.6b [from DIR]", or that there was
    nothing to remove (``model`` is the normalised name, ``directory`` the cache cleared directly)."""
    if removed == 0:
        where = directory or "the cache"
        return (
            f"nothing removed: {where} holds no entries of {model}"
            if model
            else f"nothing removed: {where} was already empty"
        )
    text = f"removed {removed} {'entry' if removed == 1 else 'entries'}" + (f" of {model}" if model else "")
    return f"{text} from {directory}" if directory else text
