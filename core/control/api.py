"""The control API under ``/-/`` on the proxy's port, built with Starlette routing.

Reads are open to local clients while the proxy is bound to loopback; calls that change state, and
every call when it is bound to another address, need the per-install token as
``Authorization: Bearer <token>`` (401 otherwise). The desktop app and the CLI reach the engine only
through this API (with :mod:`core.control.client`).

The API serves whatever satisfies :class:`Controlled` (the engine does); it never imports the engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.cache.request.builds import BuildsUnknown
from core.cache.request.explain import ExplainError
from core.cache.request.keys import normalize_model
from core.config.table import Refused
from core.control import token as tokens
from core.control.warm import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, WarmError, WarmItem, WarmStatus, check_items
from core.observe.events import EventHub
from core.observe.metrics import CONTENT_TYPE, render_prometheus
from core.ollama.client import OllamaError
from core.tuning.recommend import TuningError


class Tuner(Protocol):
    status: dict[str, Any]

    def start(self, model: str | None, runs: int, apply: bool) -> bool: ...


class Warming(Protocol):
    status: WarmStatus


class Controlled(Protocol):
    """What the control API needs of the engine it serves."""

    token: str
    loopback: bool  # bound to loopback: reads need no token
    offline: bool  # offline replay: nothing may call the upstream
    events: EventHub
    stopping: asyncio.Event
    tuning_runs: Tuner
    warmup: Warming

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def health(self) -> dict[str, Any]: ...
    async def snapshot(self) -> dict[str, Any]: ...
    async def recent(self, limit: int, model: str | None) -> list[dict[str, Any]]: ...
    async def delete(self, key: str) -> bool: ...
    async def clear(self, model: str | None) -> int: ...
    async def explain(self, payload: Mapping[str, Any]) -> dict[str, Any]: ...
    async def clear_stale(self, model: str | None) -> int: ...
    def start_warmup(self, items: list[WarmItem], concurrency: int) -> str | None: ...
    async def restart_ollama(self) -> str | None: ...
    def request_stop(self) -> None: ...
    def ollama_json(self) -> dict[str, Any]: ...
    def hardware_json(self) -> dict[str, Any]: ...
    async def apply_threads(self, num_thread: int) -> dict[str, Any]: ...
    def settings_table(self) -> dict[str, Any]: ...
    async def update_settings(self, changes: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]: ...
    def pause(self) -> dict[str, Any]: ...
    def resume(self) -> dict[str, Any]: ...
    async def loaded_models(self) -> list[dict[str, Any]]: ...
    async def installed_models(self) -> list[dict[str, Any]]: ...
    async def unload(self, model: str) -> None: ...
    async def start_ollama(self) -> str | None: ...
    async def stop_ollama(self) -> str | None: ...
    async def ollama_log(self, lines: int) -> dict[str, Any]: ...


def control_app(engine: Controlled) -> Starlette:
    """The Starlette app answering ``/-/...``; anything else under the prefix is a JSON 404.

    Its lifespan starts and stops the engine, so uvicorn's shutdown waits for the engine's writes.
    """

    def refused(request: Request) -> Response | None:
        if tokens.authorized(request.headers.get("authorization"), engine.token):
            return None
        return JSONResponse(
            {
                "error": "this control call needs the token from the Ollacache config directory "
                "as 'Authorization: Bearer <token>'"
            },
            status_code=401,
        )

    def unreadable(request: Request) -> Response | None:
        """Reads are open on loopback; on any other address they show prompts' metadata to the network."""
        return None if engine.loopback else refused(request)

    async def health(request: Request) -> Response:
        return unreadable(request) or JSONResponse(await engine.health())

    async def stats(request: Request) -> Response:
        return unreadable(request) or JSONResponse(await engine.snapshot())

    async def metrics(request: Request) -> Response:
        if (answer := unreadable(request)) is not None:
            return answer
        snapshot = await engine.snapshot()
        return Response(render_prometheus(snapshot, snapshot.get("resources")), headers={"content-type": CONTENT_TYPE})

    async def events(request: Request) -> Response:
        if (answer := unreadable(request)) is not None:
            return answer

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

    async def restart_ollama(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        refusal = await engine.restart_ollama()
        if refusal is not None:
            return JSONResponse({"error": refusal}, status_code=409)
        return JSONResponse({"ollama": engine.ollama_json()})

    async def shutdown(request: Request) -> Response:
        # how the app stops its engine on Windows, where SIGTERM is a hard kill: the same graceful stop
        if (answer := refused(request)) is not None:
            return answer
        return JSONResponse({"stopping": True}, background=BackgroundTask(engine.request_stop))

    async def authorized_body(request: Request) -> dict[str, Any] | Response:
        """The JSON object a control call sends, once its token is checked; else the error to answer."""
        if (answer := refused(request)) is not None:
            return answer
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        return body

    async def tune(request: Request) -> Response:
        if request.method == "GET":
            return unreadable(request) or JSONResponse(engine.tuning_runs.status)
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        model, runs, apply = body.get("model"), body.get("runs", 3), body.get("apply", False)
        if (
            (model is not None and (not isinstance(model, str) or not model.strip()))
            or not isinstance(runs, int)
            or isinstance(runs, bool)
            or not 1 <= runs <= 100
            or not isinstance(apply, bool)
        ):
            return JSONResponse(
                {
                    "error": 'expected {"model": name (optional), "runs": a whole number from 1 to 100, '
                    '"apply": true or false}'
                },
                status_code=400,
            )
        if engine.offline:
            return JSONResponse(
                {"error": "the proxy is offline (proxy.offline): a measurement would call Ollama"}, status_code=409
            )
        if not engine.tuning_runs.start(model, runs, apply):
            return JSONResponse({"error": "a measurement is already running"}, status_code=409)
        return JSONResponse(engine.tuning_runs.status, status_code=202)

    async def warm(request: Request) -> Response:
        if request.method == "GET":
            return unreadable(request) or JSONResponse(engine.warmup.status)
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        concurrency = body.get("concurrency", DEFAULT_CONCURRENCY)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
            return JSONResponse(
                {"error": f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}"}, status_code=400
            )
        try:
            items = check_items(body.get("requests"))
        except WarmError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        refusal = engine.start_warmup(items, concurrency)
        if refusal is not None:
            return JSONResponse({"error": refusal}, status_code=409)
        return JSONResponse(engine.warmup.status, status_code=202)

    async def tuning(request: Request) -> Response:
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        threads = body.get("num_thread")
        if not isinstance(threads, int) or isinstance(threads, bool):
            return JSONResponse({"error": 'expected {"num_thread": a whole number}'}, status_code=400)
        try:
            return JSONResponse(await engine.apply_threads(threads))
        except TuningError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    async def hardware(request: Request) -> Response:
        return unreadable(request) or JSONResponse(engine.hardware_json())

    async def entries(request: Request) -> Response:
        if (answer := unreadable(request)) is not None:
            return answer
        try:
            limit = int(request.query_params.get("limit", "100"))
            if not 1 <= limit <= 10_000:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number from 1 to 10000"}, status_code=400)
        model = request.query_params.get("model")
        model = normalize_model(model) if model else None
        return JSONResponse({"entries": await engine.recent(limit, model)})

    async def delete_entry(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        key = request.path_params["key"]
        if not await engine.delete(key):
            return JSONResponse({"error": f"no entry with key {key}"}, status_code=404)
        return JSONResponse({"deleted": key})

    async def clear(request: Request) -> Response:
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        model = body["model"] if "model" in body else request.query_params.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            return JSONResponse({"error": 'model must be a model name such as "llama3.2"'}, status_code=400)
        model = normalize_model(model) if model is not None else None
        stale = body.get("stale", False)
        if not isinstance(stale, bool):
            return JSONResponse({"error": "stale must be true or false"}, status_code=400)
        if not stale:
            return JSONResponse({"removed": await engine.clear(model), "model": model})
        try:  # only the entries of builds no longer installed
            return JSONResponse({"removed": await engine.clear_stale(model), "model": model, "stale": True})
        except BuildsUnknown as error:
            return JSONResponse({"error": str(error)}, status_code=409)

    async def explain(request: Request) -> Response:
        """Why a request misses. It shows stored prompts, so it needs the token even on loopback."""
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        try:
            return JSONResponse(await engine.explain(body))
        except ExplainError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    # -- for the tray: pausing the cache, Ollama's loaded models, starting and stopping it, its log --
    async def pause(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        return JSONResponse(engine.pause() if request.url.path == "/-/pause" else engine.resume())

    def ollama_failed(error: OllamaError) -> Response:
        """Ollama's refusal keeps its status where it says what is wrong (404: no such model); no
        answer or any other failure is a 502, as the proxy gives."""
        if error.status in (400, 404):
            said = error.cause.removeprefix(f"HTTP {error.status}: ")
            return JSONResponse({"error": f"Ollama answered: {said}"}, status_code=error.status)
        return JSONResponse({"error": f"cannot ask Ollama: {error}"}, status_code=502)

    async def models_from(request: Request, read: Callable[[], Awaitable[list[dict[str, Any]]]]) -> Response:
        """``{"models": ...}`` as ``read`` asks Ollama for them; its failure as :func:`ollama_failed` says."""
        if (answer := unreadable(request)) is not None:
            return answer
        try:
            return JSONResponse({"models": await read()})
        except OllamaError as error:
            return ollama_failed(error)

    async def ollama_models(request: Request) -> Response:
        return await models_from(request, engine.loaded_models)

    async def installed(request: Request) -> Response:
        return await models_from(request, engine.installed_models)

    async def ollama_unload(request: Request) -> Response:
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            return JSONResponse(
                {"error": 'expected {"model": the name of a loaded model, such as "llama3.2"}'}, status_code=400
            )
        try:
            await engine.unload(model.strip())
        except OllamaError as error:
            return ollama_failed(error)
        return JSONResponse({"unloaded": model.strip()})

    async def ollama_start_stop(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        starting = request.url.path.endswith("/start")
        refusal = await (engine.start_ollama() if starting else engine.stop_ollama())
        if refusal is not None:
            return JSONResponse(
                {"error": f"cannot {'start' if starting else 'stop'} Ollama: {refusal}"}, status_code=409
            )
        return JSONResponse({"ollama": engine.ollama_json()})

    async def ollama_log(request: Request) -> Response:
        if (answer := unreadable(request)) is not None:
            return answer
        try:
            lines = int(request.query_params.get("lines", "100"))
            if not 1 <= lines <= 10_000:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "lines must be a whole number from 1 to 10000"}, status_code=400)
        return JSONResponse(await engine.ollama_log(lines))

    async def settings(request: Request) -> Response:
        if request.method == "GET":
            return unreadable(request) or JSONResponse(engine.settings_table())
        body = await authorized_body(request)
        if isinstance(body, Response):
            return body
        try:
            dry_run = request.query_params.get("dry_run", "0") not in ("0", "", "false")
            return JSONResponse(await engine.update_settings(body, dry_run=dry_run))
        except Refused as refusal:
            return JSONResponse(refusal.to_json(), status_code=refusal.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no control endpoint {request.method} {request.url.path}"}, status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, status_code=405)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/-/health", health),
            Route("/-/stats", stats),
            Route("/-/metrics", metrics),
            Route("/-/events", events),
            Route("/-/entries", entries),
            Route("/-/hardware", hardware),
            Route("/-/ollama/restart", restart_ollama, methods=["POST"]),
            Route("/-/shutdown", shutdown, methods=["POST"]),
            Route("/-/tune", tune, methods=["GET", "POST"]),
            Route("/-/tuning", tuning, methods=["POST"]),
            Route("/-/warm", warm, methods=["GET", "POST"]),
            Route("/-/entries/{key}", delete_entry, methods=["DELETE"]),
            Route("/-/clear", clear, methods=["POST"]),
            Route("/-/explain", explain, methods=["POST"]),
            Route("/-/settings", settings, methods=["GET", "PUT"]),
            Route("/-/pause", pause, methods=["POST"]),
            Route("/-/resume", pause, methods=["POST"]),
            Route("/-/ollama/models", ollama_models),
            Route("/-/ollama/installed", installed),
            Route("/-/ollama/unload", ollama_unload, methods=["POST"]),
            Route("/-/ollama/start", ollama_start_stop, methods=["POST"]),
            Route("/-/ollama/stop", ollama_start_stop, methods=["POST"]),
            Route("/-/ollama/log", ollama_log),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )
