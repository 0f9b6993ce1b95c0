"""Ollama's native ``/api/*`` routes (plus ``/``) on top of :mod:`fake_turns`.

Every handler has the signature ``(host, cfg, request) -> Response`` where
``cfg`` is the configuration snapshot taken when the request arrived.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .fake_config import (
    blob_path,
    display_shortest,
    find_model,
    fresh_digest,
    installed_models,
    model_entry,
    registry_digest,
)
from .fake_text import embedding_vector
from .fake_turns import (
    Host,
    Turn,
    failed_after,
    native_chunks,
    native_whole,
    prepare_chat,
    prepare_embed,
    prepare_generate,
)
from .fake_wire import (
    NDJSON,
    RequestError,
    check_field_types,
    gin_plain,
    go_quote,
    json_response,
    ndjson_line,
    ollama_error,
    pause,
    read_json_object,
    rfc3339_local,
    rfc3339_utc_now,
    stream_response,
    unix_seconds,
)

Handler = Callable[[Host, dict[str, Any], Request], Awaitable[Response]]
_STR, _BOOL = ("string", "string"), ("bool", "bool")


async def _body(request: Request, struct: str) -> dict[str, Any]:
    return await read_json_object(request, struct, empty_message="missing request body")


async def answer_turn(host: Host, cfg: Mapping[str, Any], turn: Turn) -> Response:
    """Put a generate/chat turn on the wire as NDJSON or as one JSON object; a runner failing after some
    chunks (config ``error_after_chunks``) ends the stream with an ``{"error": ...}`` line, or makes the
    answer a 500 error when nothing was streamed yet."""
    if turn.special:
        return json_response(native_whole(turn))
    delay = float(cfg["chunk_delay_ms"])
    failed = failed_after(cfg, turn)
    if failed is not None and (failed == 0 or not turn.stream):
        # streamed: Ollama's streamResponse sets a bare JSON content type before c.JSON, which keeps it
        return ollama_error(500, str(cfg["fail_message"]), media_type="application/json" if turn.stream else None)
    if not turn.stream:
        await pause(delay * len(turn.answer.pieces), host.closing)
        return json_response(native_whole(turn))
    frames: Iterator[bytes] = (ndjson_line(chunk) for chunk in native_chunks(turn))
    if failed is not None:
        frames = itertools.chain(itertools.islice(frames, failed), [ndjson_line({"error": cfg["fail_message"]})])
    return stream_response(
        frames,
        media_type=NDJSON,
        delay_ms=delay,
        drop_after=cfg["drop_after_chunks"],
        closing=host.closing,
        abandoned=host.stream_abandoned,
    )


async def generate(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/generate``."""
    turn = prepare_generate(host, cfg, await _body(request, "api.GenerateRequest"))
    return await answer_turn(host, cfg, turn)


async def chat(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/chat``."""
    turn = prepare_chat(host, cfg, await _body(request, "api.ChatRequest"))
    return await answer_turn(host, cfg, turn)


async def embed(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/embed``: normalised float32 vectors."""
    return json_response(prepare_embed(host, cfg, await _body(request, "api.EmbedRequest")))


async def embeddings(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/embeddings`` (legacy): one un-normalised vector printed as float64."""
    body = await _body(request, "api.EmbeddingRequest")
    check_field_types(body, {"model": _STR, "prompt": _STR}, "api.EmbeddingRequest")
    raw_model = body.get("model") or ""
    if not raw_model.strip():
        raise RequestError(400, "model is required")
    entry = find_model(cfg, raw_model)
    if entry is None:
        raise RequestError(404, f"model {go_quote(raw_model)} not found, try pulling it first")
    host.mark_loaded(entry)
    prompt = body.get("prompt") or ""
    vector = embedding_vector(prompt, int(entry["embedding_length"]), normalize=False) if prompt else []
    return json_response({"embedding": vector})


def details(entry: Mapping[str, Any], *, lengths: bool = True) -> dict[str, Any]:
    """``api.ModelDetails`` of an installed model."""
    out: dict[str, Any] = {
        "parent_model": "",
        "format": "gguf",
        "family": entry["family"],
        "families": [entry["family"]],
        "parameter_size": entry["parameter_size"],
        "quantization_level": entry["quantization_level"],
    }
    if lengths:
        out["context_length"] = entry["context_length"]
        out["embedding_length"] = entry["embedding_length"]
    return out


def sorted_models(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Installed models, most recently modified first (Ollama's /api/tags order)."""
    return sorted(installed_models(cfg), key=lambda e: unix_seconds(e["modified_at"]), reverse=True)


async def tags(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET|HEAD /api/tags``; 404 text when ``tags_enabled`` is false."""
    if not cfg["tags_enabled"]:
        return gin_plain(404)
    models = [
        {
            "name": e["name"],
            "model": e["name"],
            "modified_at": e["modified_at"],
            "size": e["size"],
            "digest": e["digest"],
            "details": details(e),
            "capabilities": e["capabilities"],
        }
        for e in sorted_models(cfg)
    ]
    return json_response({"models": models})


async def ps(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET /api/ps``: models used since the last reset, expiring 5 minutes after last use."""
    rows = [
        {
            "name": e["name"],
            "model": e["name"],
            "size": e["size"],
            "digest": e["digest"],
            "details": details(e, lengths=False),
            "expires_at": rfc3339_local(used + 300),
            "size_vram": e["size"],
            "context_length": 4096,
            "_expires": used + 300,
        }
        for e, used in host.loaded_models()
    ]
    rows.sort(key=lambda r: r.pop("_expires"), reverse=True)
    return json_response({"models": rows})


async def show(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/show``: a small but valid ``api.ShowResponse``."""
    body = await _body(request, "api.ShowRequest")
    check_field_types(body, {"model": _STR, "name": _STR, "verbose": _BOOL}, "api.ShowRequest")
    raw_model = body.get("model") or body.get("name") or ""
    if not raw_model:
        raise RequestError(400, "model is required")
    entry = find_model(cfg, raw_model)
    if entry is None:
        raise RequestError(404, f"model '{display_shortest(raw_model)}' not found")
    arch = entry["family"].replace("-", "")
    return json_response(
        {
            "license": "Fake license for tests.",
            "modelfile": (  # as Ollama writes it: its FROM line names the model's file
                '# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM'
                f' with:\n# FROM {entry["name"]}\n\nFROM {blob_path(cfg, entry)}\nPARAMETER stop "<|eot|>"\n'
            ),
            "parameters": 'stop                           "<|eot|>"',
            "template": "{{ .Prompt }}",
            "details": details(entry, lengths=False),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": entry["size"] // 2,
                f"{arch}.context_length": entry["context_length"],
                f"{arch}.embedding_length": entry["embedding_length"],
            },
            "capabilities": entry["capabilities"],
            "modified_at": entry["modified_at"],
        }
    )


def _pull_frames(name: str, digest: str, size: int) -> Iterator[dict[str, Any]]:
    yield {"status": "pulling manifest"}
    yield {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": size}
    yield {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": size, "completed": size}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    yield {"status": "success"}


async def pull(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/pull``: progress lines ending with success; installs the registry's build (config
    ``registry``; an installed model not named there keeps its build, an unknown one is installed)."""
    body = await _body(request, "api.PullRequest")
    check_field_types(body, {"model": _STR, "name": _STR, "stream": _BOOL}, "api.PullRequest")
    raw_model = body.get("model") or body.get("name") or ""
    if not raw_model.strip():
        raise RequestError(400, "invalid model name")
    entry = find_model(cfg, raw_model)
    wanted = registry_digest(cfg, raw_model)
    if entry is None and wanted is None:
        host.add_model(raw_model)
        entry = model_entry(raw_model)
    elif entry is None or (wanted is not None and wanted != entry["digest"]):
        entry = model_entry({**(entry or {"name": raw_model}), "digest": wanted, "modified_at": rfc3339_utc_now()})
        host.install(entry)
    return _progress(host, cfg, body, _pull_frames(entry["name"], entry["digest"], entry["size"]))


def _progress(
    host: Host, cfg: Mapping[str, Any], body: Mapping[str, Any], frames: Iterator[dict[str, Any]]
) -> Response:
    """Progress as pull and create send it: NDJSON lines, or with ``stream: false`` the last one alone."""
    if body.get("stream") is False:
        return json_response(list(frames)[-1], media_type="application/json")
    return stream_response(
        (ndjson_line(f) for f in frames),
        media_type=NDJSON,
        delay_ms=float(cfg["chunk_delay_ms"]),
        drop_after=cfg["drop_after_chunks"],
        closing=host.closing,
        abandoned=host.stream_abandoned,
    )


_CREATE_FIELDS = {
    "model": _STR,
    "name": _STR,
    "from": _STR,
    "system": _STR,
    "template": _STR,
    "quantize": _STR,
    "stream": _BOOL,
}


async def create(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/create`` from an installed model (``from``): a new build under ``model``, its digest made
    from what the request sets, progress lines ending with success (an unknown ``from``: an error line)."""
    body = await _body(request, "api.CreateRequest")
    check_field_types(body, _CREATE_FIELDS, "api.CreateRequest")
    name = body.get("model") or body.get("name") or ""
    if not name.strip():
        raise RequestError(400, "invalid model name")
    if not body.get("from", "").strip():
        raise RequestError(400, "neither 'from' or 'files' was specified")
    base = find_model(cfg, body["from"])
    if base is None:  # Ollama would try to pull it; the fake's registry has nothing that is not installed
        error = {"error": f"pull model manifest: file does not exist: {display_shortest(body['from'])}"}
        if body.get("stream") is False:
            return json_response(error, 500)
        return stream_response(
            iter([ndjson_line({"status": "pulling manifest"}), ndjson_line(error)]),
            media_type=NDJSON,
            delay_ms=0.0,
            drop_after=None,
            closing=host.closing,
            abandoned=host.stream_abandoned,
        )
    changes = {k: v for k, v in sorted(body.items()) if k not in ("model", "name", "stream", "from")}
    digest = fresh_digest(f"{base['digest']}:{changes}")
    entry = model_entry({**base, "name": name, "digest": digest, "modified_at": rfc3339_utc_now()})
    host.install(entry)
    frames = [{"status": f"using existing layer sha256:{base['digest']}"}]
    frames += [
        {"status": f"creating new layer sha256:{fresh_digest(f'{key}:{value}')}"} for key, value in changes.items()
    ]
    frames += [{"status": "writing manifest"}, {"status": "success"}]
    return _progress(host, cfg, body, iter(frames))


async def copy(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``POST /api/copy``: ``destination`` becomes the same build as ``source``; 200 with an empty body."""
    body = await _body(request, "api.CopyRequest")
    check_field_types(body, {"source": _STR, "destination": _STR}, "api.CopyRequest")
    source, destination = body.get("source") or "", body.get("destination") or ""
    if not source.strip():
        raise RequestError(400, f"source {go_quote(source)} is invalid")
    if not destination.strip():
        raise RequestError(400, f"destination {go_quote(destination)} is invalid")
    entry = find_model(cfg, source)
    if entry is None:
        raise RequestError(404, f"model {go_quote(source)} not found")
    host.install({**entry, "name": destination, "modified_at": rfc3339_utc_now()})
    return Response(b"", status_code=200)


async def delete(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``DELETE /api/delete``: the model is gone from ``/api/tags``; 200 with an empty body."""
    body = await _body(request, "api.DeleteRequest")
    check_field_types(body, {"model": _STR, "name": _STR}, "api.DeleteRequest")
    raw_model = body.get("model") or body.get("name") or ""
    if not raw_model.strip():
        raise RequestError(400, f"name {go_quote(raw_model)} is invalid")
    if not host.remove_model(raw_model):
        raise RequestError(404, f"model '{raw_model}' not found")
    return Response(b"", status_code=200)


async def version(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET|HEAD /api/version``; 404 text when ``version`` is None."""
    if cfg["version"] is None:
        return gin_plain(404)
    return json_response({"version": cfg["version"]})


async def root(host: Host, cfg: dict[str, Any], request: Request) -> Response:
    """``GET|HEAD /``: gin's ``c.String`` reply."""
    return Response(b"Ollama is running", headers={"content-type": "text/plain; charset=utf-8"})


def native_error(err: RequestError) -> Response:
    """How the native routes report a :class:`RequestError`."""
    return ollama_error(err.status, err.message)


#: (path, methods, handler) for every native route.
ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/", ["GET", "HEAD"], root),
    ("/api/version", ["GET", "HEAD"], version),
    ("/api/tags", ["GET", "HEAD"], tags),
    ("/api/ps", ["GET"], ps),
    ("/api/show", ["POST"], show),
    ("/api/pull", ["POST"], pull),
    ("/api/create", ["POST"], create),
    ("/api/copy", ["POST"], copy),
    ("/api/delete", ["DELETE"], delete),
    ("/api/generate", ["POST"], generate),
    ("/api/chat", ["POST"], chat),
    ("/api/embed", ["POST"], embed),
    ("/api/embeddings", ["POST"], embeddings),
]
