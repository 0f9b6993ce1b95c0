"""What each control call does, one function per call of :data:`core.control.endpoints.ENDPOINTS`, by name.

Each takes the engine, the request and the JSON object it sent (``{}`` for a call that takes none) and returns
the answer; the token, the body and the refusals (:class:`Rejected`) are checked in one place,
:func:`core.control.api.control_app`. ``/-/events`` is not here: it streams (see :mod:`core.control.api`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.access.keyring import KeyRefused
from core.cache.request.builds import BuildsUnknown
from core.cache.request.explain import ExplainError
from core.cache.request.keys import normalize_model
from core.config.parsing import parse_seconds
from core.config.table import Refused
from core.control.controlled import Controlled
from core.control.warm import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, WarmError, check_items
from core.observe.metrics import CONTENT_TYPE, render_prometheus
from core.ollama.client import OllamaError
from core.tuning.recommend import TuningError

Body = dict[str, Any]
Handler = Callable[[Controlled, Request, Body], Awaitable[Response]]


class Rejected(Exception):
    """A call refused: ``status`` and the sentence that says why (answered as ``{"error": ...}``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _whole_number(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise Rejected(400, f"{name} must be a whole number from {low} to {high}")
    return number


def _model(value: Any, message: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejected(400, message)
    return value.strip()


def _ollama_failed(error: OllamaError) -> Rejected:
    """Ollama's refusal keeps its status where it says what is wrong (404: no such model); no answer or any
    other failure is a 502, as the proxy gives."""
    if error.status in (400, 404):
        return Rejected(error.status, f"Ollama answered: {error.cause.removeprefix(f'HTTP {error.status}: ')}")
    return Rejected(502, f"cannot ask Ollama: {error}")


async def health(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(await engine.health())


async def stats(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(await engine.snapshot())


async def metrics(engine: Controlled, request: Request, body: Body) -> Response:
    snapshot = await engine.snapshot()
    return Response(render_prometheus(snapshot, snapshot.get("resources")), headers={"content-type": CONTENT_TYPE})


async def entries(engine: Controlled, request: Request, body: Body) -> Response:
    limit = _whole_number(request.query_params.get("limit", "100"), "limit", 1, 10_000)
    model = request.query_params.get("model")
    return JSONResponse({"entries": await engine.entries.recent(limit, normalize_model(model) if model else None)})


async def delete_entry(engine: Controlled, request: Request, body: Body) -> Response:
    key = request.path_params["key"]
    if not await engine.entries.delete(key):
        raise Rejected(404, f"no entry with key {key}")
    return JSONResponse({"deleted": key})


async def clear(engine: Controlled, request: Request, body: Body) -> Response:
    model = body["model"] if "model" in body else request.query_params.get("model")
    if model is not None:
        model = normalize_model(_model(model, 'model must be a model name such as "llama3.2"'))
    stale = body.get("stale", False)
    if not isinstance(stale, bool):
        raise Rejected(400, "stale must be true or false")
    if unknown := sorted(set(body) - {"model", "stale", "older_than"}):  # never taken as a clear of everything
        raise Rejected(400, f"clear takes model, stale and older_than, not {', '.join(unknown)}")
    if body.get("older_than") is not None:
        if stale:
            raise Rejected(400, "stale and older_than cannot be asked together: clear one way, then the other")
        try:
            older_than_s = parse_seconds(body["older_than"])
        except ValueError:
            raise Rejected(400, 'older_than must be an age such as "7d", "12h" or a number of seconds') from None
        removed = await engine.entries.clear_older(model, older_than_s)
        return JSONResponse({"removed": removed, "model": model, "older_than_s": older_than_s})
    if not stale:
        return JSONResponse({"removed": await engine.entries.clear(model), "model": model})
    try:  # only the entries of builds no longer installed
        return JSONResponse({"removed": await engine.entries.clear_stale(model), "model": model, "stale": True})
    except BuildsUnknown as error:
        raise Rejected(409, str(error)) from None


async def explain(engine: Controlled, request: Request, body: Body) -> Response:
    """Why a request misses. It shows stored prompts, so it needs the token even on loopback."""
    try:
        return JSONResponse(await engine.entries.explain(body))
    except ExplainError as error:
        raise Rejected(400, str(error)) from None


async def warm_start(engine: Controlled, request: Request, body: Body) -> Response:
    concurrency = body.get("concurrency", DEFAULT_CONCURRENCY)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Rejected(400, f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}")
    try:
        items = check_items(body.get("requests"))
    except WarmError as error:
        raise Rejected(400, str(error)) from None
    if (refusal := engine.start_warmup(items, concurrency)) is not None:
        raise Rejected(409, refusal)
    return JSONResponse(engine.warmup.status, status_code=202)


async def warm_status(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.warmup.status)


async def hardware(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.hardware_json())


async def restart_ollama(engine: Controlled, request: Request, body: Body) -> Response:
    if (refusal := await engine.restart_ollama()) is not None:
        raise Rejected(409, refusal)
    return JSONResponse({"ollama": engine.ollama_json()})


async def tune_start(engine: Controlled, request: Request, body: Body) -> Response:
    model, runs, apply = body.get("model"), body.get("runs", 3), body.get("apply", False)
    if (
        (model is not None and (not isinstance(model, str) or not model.strip()))
        or not isinstance(runs, int)
        or isinstance(runs, bool)
        or not 1 <= runs <= 100
        or not isinstance(apply, bool)
    ):
        raise Rejected(
            400, 'expected {"model": name (optional), "runs": a whole number from 1 to 100, "apply": true or false}'
        )
    if engine.offline:
        raise Rejected(409, "the proxy is offline (proxy.offline): a measurement would call Ollama")
    if not engine.tuning_runs.start(model, runs, apply):
        raise Rejected(409, "a measurement is already running")
    return JSONResponse(engine.tuning_runs.status, status_code=202)


async def tune_status(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.tuning_runs.status)


async def set_threads(engine: Controlled, request: Request, body: Body) -> Response:
    threads = body.get("num_thread")
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise Rejected(400, 'expected {"num_thread": a whole number}')
    try:
        return JSONResponse(await engine.apply_threads(threads))
    except TuningError as error:
        raise Rejected(400, str(error)) from None


async def settings(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.settings_table())


async def update_settings(engine: Controlled, request: Request, body: Body) -> Response:
    dry_run = request.query_params.get("dry_run", "0") not in ("0", "", "false")
    try:
        return JSONResponse(await engine.update_settings(body, dry_run=dry_run))
    except Refused as refusal:
        return JSONResponse(refusal.to_json(), status_code=refusal.status)


async def pause(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.pause())


async def resume(engine: Controlled, request: Request, body: Body) -> Response:
    return JSONResponse(engine.resume())


async def _models(read: Callable[[], Awaitable[list[dict[str, Any]]]]) -> Response:
    """``{"models": ...}`` as ``read`` asks Ollama for them; its failure as :func:`_ollama_failed` says."""
    try:
        return JSONResponse({"models": await read()})
    except OllamaError as error:
        raise _ollama_failed(error) from None


async def ollama_models(engine: Controlled, request: Request, body: Body) -> Response:
    return await _models(engine.models.loaded)


async def installed_models(engine: Controlled, request: Request, body: Body) -> Response:
    return await _models(engine.models.installed)


async def shutdown(engine: Controlled, request: Request, body: Body) -> Response:
    """How the app stops its engine on Windows, where SIGTERM is a hard kill: the same graceful stop."""
    return JSONResponse({"stopping": True}, background=BackgroundTask(engine.request_stop))


async def unload(engine: Controlled, request: Request, body: Body) -> Response:
    model = _model(body.get("model"), 'expected {"model": the name of a loaded model, such as "llama3.2"}')
    try:
        await engine.models.unload(model)
    except OllamaError as error:
        raise _ollama_failed(error) from None
    return JSONResponse({"unloaded": model})


async def stop_ollama(engine: Controlled, request: Request, body: Body) -> Response:
    if (refusal := await engine.stop_ollama()) is not None:
        raise Rejected(409, f"cannot stop Ollama: {refusal}")
    return JSONResponse({"ollama": engine.ollama_json()})


async def start_ollama(engine: Controlled, request: Request, body: Body) -> Response:
    if (refusal := await engine.start_ollama()) is not None:
        raise Rejected(409, f"cannot start Ollama: {refusal}")
    return JSONResponse({"ollama": engine.ollama_json()})


async def ollama_log(engine: Controlled, request: Request, body: Body) -> Response:
    lines = _whole_number(request.query_params.get("lines", "100"), "lines", 1, 10_000)
    return JSONResponse(await engine.ollama_log(lines))


# The key ring reads and writes a small file under a thread lock the housekeeping's flush also takes: off the loop.
async def keys(engine: Controlled, request: Request, body: Body) -> Response:
    listed = await asyncio.to_thread(engine.keyring.keys)
    # the hash stays in the file: the list says who and when, nothing that could help guess a key
    return JSONResponse(
        {"keys": [{"name": key.name, "created": key.created, "last_used": key.last_used or None} for key in listed]}
    )


async def add_key(engine: Controlled, request: Request, body: Body) -> Response:
    name = body.get("name")
    if not isinstance(name, str):
        raise Rejected(400, 'expected {"name": the name of a person or a device, such as "alice-laptop"}')
    try:
        secret = await asyncio.to_thread(engine.keyring.add, name)
    except KeyRefused as refusal:
        raise Rejected(400, str(refusal)) from None
    made = next((key.created for key in await asyncio.to_thread(engine.keyring.keys) if key.name == name), None)
    return JSONResponse({"name": name, "key": secret, "created": made}, status_code=201)


async def revoke_key(engine: Controlled, request: Request, body: Body) -> Response:
    name = request.path_params["name"]
    try:
        await asyncio.to_thread(engine.keyring.revoke, name)
    except KeyRefused as refusal:
        raise Rejected(404, str(refusal)) from None
    return JSONResponse({"revoked": name})


HANDLERS: dict[str, Handler] = {
    handler.__name__: handler
    for handler in (
        health,
        stats,
        metrics,
        entries,
        delete_entry,
        clear,
        explain,
        warm_start,
        warm_status,
        hardware,
        restart_ollama,
        tune_start,
        tune_status,
        set_threads,
        settings,
        update_settings,
        pause,
        resume,
        ollama_models,
        installed_models,
        shutdown,
        unload,
        stop_ollama,
        start_ollama,
        ollama_log,
        keys,
        add_key,
        revoke_key,
    )
}
