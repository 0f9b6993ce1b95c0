"""Identical requests in flight at the same time make one upstream call.

The first request for a key that is not stored leads: it calls the upstream as any miss does, and its
answer passes through a :class:`Flight` on its way to the client. Every identical request arriving
meanwhile follows that flight instead of calling the upstream again: it is sent what has arrived so
far at once, then each new part as it comes (``X-Cache: SHARED``).

A follower that leaves disturbs no one. A leader whose client leaves goes on for its followers, sending
to no one; once every client is gone the upstream call is cancelled, and nothing partial is stored. The
answer is kept as the ASGI messages the leader would send, without the headers that belong to one
client (CORS, ``X-Cache``): each client adds its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.cache.entry import Entry

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class Flight:
    """One upstream call for ``key``, in ``streamed`` mode, led by the task ``driver``; ``usage``: an OpenAI
    stream asked with its usage (so it can be merged into a whole answer)."""

    def __init__(
        self, flights: Flights, key: str, streamed: bool, driver: asyncio.Task[Any] | None, usage: bool = False
    ) -> None:
        self.key = key
        self.streamed = streamed
        self.usage = usage
        self.messages: list[Message] = []  # the answer so far, as ASGI messages without per-client headers
        self.ended = False  # the call is over: every message there will be is in ``messages``
        self.entry: Entry | None = None  # the whole answer, once recorded complete (stored or not)
        self.followers = 0
        self.leader_gone = False  # the leader's client left; the call goes on for the followers
        self._flights = flights
        self._driver = driver
        self._news = asyncio.Event()

    def tee(self, send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
        """The leader's ``send``: keeps each message for the followers and sends it on, with ``extra``
        headers on the response start, to the leader's client while it is there."""

        async def sending(message: Message) -> None:
            self.messages.append(message)
            self._wake()
            if self.leader_gone:
                return
            await send(with_headers(message, extra))

        return sending

    def leader_left(self) -> bool:
        """The leader's client disconnected: whether the call goes on (there are followers).

        When it does not, the flight is closed to newcomers at once, and the caller cancels the call.
        """
        if self.followers:
            self.leader_gone = True
            return True
        self._flights.drop(self)
        return False

    def join(self) -> None:
        self.followers += 1

    def leave(self) -> None:
        """A follower is done or gone; the last one out of a flight whose leader left cancels the call."""
        self.followers -= 1
        if not self.followers and self.leader_gone and not self.ended and not self.answered:
            self._flights.drop(self)
            if self._driver is not None:
                self._driver.cancel()

    @property
    def status(self) -> int:
        """The status the answer started with, 0 before it started."""
        return self.messages[0]["status"] if self.messages and "status" in self.messages[0] else 0

    @property
    def answered(self) -> bool:
        """Whether the answer's last message has been sent: what is left is judging and storing it."""
        return bool(self.messages) and is_last(self.messages[-1])

    async def wait_end(self) -> None:
        """Wait until the call is over and its answer judged (``entry`` set when it was whole)."""
        while not self.ended:
            await self._news.wait()

    async def wait_past(self, seen: int) -> None:
        """Wait until there are more than ``seen`` messages, or the call is over."""
        while len(self.messages) <= seen and not self.ended:
            await self._news.wait()

    def end(self) -> None:
        """The call is over (answered, failed or cancelled): no one new joins, and followers finish."""
        self.ended = True
        self._flights.drop(self)
        self._wake()

    def _wake(self) -> None:
        self._news.set()
        self._news.clear()  # the waiters are woken already; the next wait waits for the next message


class Flights:
    """The upstream calls under way, by key."""

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}

    def get(self, key: str) -> Flight | None:
        return self._by_key.get(key)

    def start(self, key: str, streamed: bool, usage: bool = False) -> Flight:
        """A new flight for ``key``, led by the current task (it replaces none: the caller checked)."""
        flight = Flight(self, key, streamed, asyncio.current_task(), usage)
        self._by_key[key] = flight
        return flight

    def drop(self, flight: Flight) -> None:
        if self._by_key.get(flight.key) is flight:
            del self._by_key[flight.key]

    def __len__(self) -> int:
        return len(self._by_key)

    def following(self) -> int:
        """Requests answered right now by following another's upstream call."""
        return sum(flight.followers for flight in self._by_key.values())


def is_last(message: Message) -> bool:
    """Whether ``message`` ends a response."""
    return message["type"] == "http.response.body" and not message.get("more_body", False)


def with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    """``message`` with ``extra`` headers added when it starts a response."""
    if message["type"] != "http.response.start":
        return message
    return {**message, "headers": [*message["headers"], *extra]}


def can_follow(flight: Flight, streamed: bool, api: str) -> bool:
    """Whether a request (``streamed`` or not) on an ``api`` route can follow ``flight``: in the same mode
    always; a whole answer serves a stream too, and a stream a whole request when it can be merged (an OpenAI
    stream only when asked with its usage)."""
    return flight.streamed == streamed or not flight.streamed or api != "openai" or flight.usage
