"""The control API under ``/-/`` on the proxy's port, built with Starlette routing from the one table of calls
(:data:`core.control.endpoints.ENDPOINTS`) and their handlers (:mod:`core.control.handlers`).

Reads are open to local clients while the proxy is bound to loopback; calls that change state, and every call
when it is bound to another address, need the per-install token as ``Authorization: Bearer <token>`` (401
otherwise). That check, reading a call's JSON object and answering a refusal happen here, once for every call.
The desktop app and the CLI reach the engine only through this API (with :mod:`core.control.client`).

The API serves whatever satisfies :class:`~core.control.controlled.Controlled` (the engine does); it never
imports the engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.control import token as tokens
from core.control.controlled import Controlled
from core.control.endpoints import ENDPOINTS, Endpoint
from core.control.handlers import HANDLERS, Body, Handler, Rejected

NEEDS_TOKEN = "this control call needs the token from the Ollacache config directory as 'Authorization: Bearer <token>'"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _guarded(engine: Controlled, endpoint: Endpoint, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the token check the call declares, with its JSON object read and its refusals
    answered as ``{"error": ...}``."""

    async def answer(request: Request) -> Response:
        # a read is open on loopback; on any other address it shows prompts' metadata to the network
        if (endpoint.token or not engine.loopback) and not tokens.authorized(
            request.headers.get("authorization"), engine.token
        ):
            return _error(401, NEEDS_TOKEN)
        body: Body = {}
        if endpoint.body:
            try:
                read = await request.json() if await request.body() else {}
            except ValueError:
                read = None
            if not isinstance(read, dict):
                return _error(400, "the body must be a JSON object")
            body = read
        try:
            return await handler(engine, request, body)
        except Rejected as refusal:
            return _error(refusal.status, str(refusal))

    return answer


async def events(engine: Controlled, request: Request, body: Body) -> Response:
    """``GET /-/events``: a stats snapshot now, then what the engine publishes, until it stops."""

    async def stream() -> AsyncIterator[bytes]:
        # the engine publishes one stats snapshot a second for all subscribers; a new one gets one now
        with engine.events.subscribe() as queue:
            yield b"event: stats\ndata: " + json.dumps(await engine.snapshot()).encode() + b"\n\n"
            stopping = asyncio.ensure_future(engine.stopping.wait())
            try:
                while not engine.stopping.is_set():
                    getting = asyncio.ensure_future(queue.get())
                    await asyncio.wait((getting, stopping), return_when=asyncio.FIRST_COMPLETED)
                    if not getting.done():
                        getting.cancel()
                        break
                    name, payload = getting.result()
                    yield f"event: {name}\ndata: ".encode() + json.dumps(payload).encode() + b"\n\n"
            finally:
                stopping.cancel()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )


def control_app(engine: Controlled) -> Starlette:
    """The Starlette app answering ``/-/...``; anything else under the prefix is a JSON 404.

    Its lifespan starts and stops the engine, so uvicorn's shutdown waits for the engine's writes.
    """
    handlers: dict[str, Handler] = {**HANDLERS, "events": events}

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no control endpoint {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    routes = [
        Route(endpoint.path, _guarded(engine, endpoint, handlers[endpoint.name]), methods=[endpoint.method])
        for endpoint in ENDPOINTS
    ]
    return Starlette(lifespan=lifespan, routes=routes, exception_handlers={404: not_found, 405: not_allowed})
