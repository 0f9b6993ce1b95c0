"""OpenAI streams recorded with their usage, whoever asked (pure).

An OpenAI stream carries its token counts only when its request asks ``stream_options.include_usage``, and a
whole answer cannot be given without them. So every OpenAI stream the cache records is asked of the upstream
with the option set (:func:`with_usage`: the one change the proxy makes to a body it forwards), and one entry
serves streamed requests with and without the option and whole requests alike. A client that did not ask is
sent the stream without what the option added (:class:`UsageFilter`): the last chunk, with no choices and the
usage, and the zero ``usage`` Ollama puts on every ``/v1/completions`` chunk then. An upstream that ignores
the option sends a stream without usage; nothing is invented for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.cache.request.amend import amended
from core.cache.request.wire import dumps


def with_usage(body: bytes) -> bytes:
    """``body`` asking ``stream_options.include_usage``; unchanged when it already does or is not a JSON object."""
    return amended(body, "stream_options", "include_usage", True, keeps=lambda given: given is True)


class UsageFilter:
    """Takes an OpenAI stream in whatever pieces it comes and gives it back without its usage, event by event.

    An event split across pieces is held until its end arrives; events without the word ``usage`` pass as
    they are, byte for byte.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, piece: bytes) -> bytes:
        """What to send of ``piece`` (with what was held back before it): whole events only."""
        text = self._pending + piece
        end = text.rfind(b"\n\n")
        if end < 0:
            self._pending = text
            return b""
        self._pending = text[end + 2 :]
        whole = text[: end + 2]
        if b'"usage"' not in whole:
            return whole
        return b"".join(_without_usage(event) for event in whole[:-2].split(b"\n\n"))

    def flush(self) -> bytes:
        """What is held back once the stream ends (an event cut short is passed on as it came)."""
        rest, self._pending = self._pending, b""
        return rest


def _without_usage(event: bytes) -> bytes:
    """One event (without its blank line) as a client that did not ask for usage gets it, blank line included."""
    if b'"usage"' not in event or not event.startswith(b"data:"):
        return event + b"\n\n"
    try:
        chunk = json.loads(event[5:])
    except ValueError:
        return event + b"\n\n"
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return event + b"\n\n"
    if chunk.get("choices") == []:
        return b""  # the usage chunk the option added
    del chunk["usage"]
    return b"data: " + dumps(chunk) + b"\n\n"


def without_usage(chunks: Sequence[bytes]) -> list[bytes]:
    """A recorded stream as a client that did not ask for usage gets it: one piece per recorded chunk (empty
    where a chunk held only usage), so a paced replay keeps its pace."""
    usage = UsageFilter()
    out = [usage.feed(chunk) for chunk in chunks]
    if out:
        out[-1] += usage.flush()
    return out
