"""Sending an OpenAI stream recorded with its usage to a client that did not ask for it.

The proxy asks the upstream for the usage of every OpenAI stream it records (see
:mod:`core.cache.request.usage`); a client that did not ask gets the stream without it, live from the upstream
or from a request in flight. Only an event stream is filtered: an error answer passes as it came.
"""

from __future__ import annotations

from core.cache.request.usage import UsageFilter
from core.http.flight import Message
from core.http.upstream import Send


def hiding_usage(send: Send) -> Send:
    """``send`` for a client that did not ask ``stream_options.include_usage``."""
    usage: UsageFilter | None = None

    async def sending(message: Message) -> None:
        nonlocal usage
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                usage = UsageFilter()
        elif message["type"] == "http.response.body" and usage is not None:
            body = usage.feed(message.get("body", b""))
            if not message.get("more_body", False):
                body += usage.flush()
            message = {**message, "body": body}
        await send(message)

    return sending
