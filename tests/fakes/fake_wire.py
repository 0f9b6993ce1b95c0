"""Wire-level helpers: Go-compatible JSON, timestamps, error bodies and streaming.

Ollama is a Go (gin) server, so its bodies are what ``encoding/json`` produces:
compact separators, ``<``, ``>`` and ``&`` escaped as ``\\u003c`` etc., and
``time.Time`` rendered as RFC 3339 with up to nine fractional digits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

JSON_UTF8 = "application/json; charset=utf-8"  # gin's c.JSON
NDJSON = "application/x-ndjson"  # Ollama's streamed answers
SSE = "text/event-stream"  # OpenAI-compatible streams


class SimulatedCrash(Exception):
    """Raised inside a response so uvicorn drops the TCP connection mid-body."""


class RequestError(Exception):
    """A request the real server would reject; carries the HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _CrashLogFilter(logging.Filter):
    """Hide uvicorn's traceback for deliberate :class:`SimulatedCrash` aborts."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedCrash)


def install_crash_log_filter() -> None:
    """Idempotently attach the filter to ``uvicorn.error`` (only drops our own aborts)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CrashLogFilter) for f in logger.filters):
        logger.addFilter(_CrashLogFilter())


def go_json(obj: Any) -> bytes:
    """Serialise like Go's ``json.Marshal`` (compact, HTML-escaped, UTF-8)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def go_quote(text: str) -> str:
    """Approximation of Go's ``%q`` verb (a double-quoted, escaped string)."""
    return json.dumps(text, ensure_ascii=False)


def rfc3339_utc_now() -> str:
    """``time.Now().UTC()`` as Go marshals it, e.g. ``2025-06-01T10:00:00.123456789Z``."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def rfc3339_local(epoch_seconds: float) -> str:
    """A local-time timestamp with numeric offset, as Go prints ``time.Local`` values."""
    stamp = datetime.fromtimestamp(epoch_seconds).astimezone().isoformat()
    return stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp


def unix_seconds(rfc3339: str) -> int:
    """Seconds since the epoch of an RFC 3339 timestamp (nanoseconds truncated)."""
    head, _, rest = rfc3339.partition(".")
    zone = rest.lstrip("0123456789") if rest else ""
    stamp = (head + zone).replace("Z", "+00:00")
    return int(datetime.fromisoformat(stamp).timestamp())


def json_response(obj: Any, status: int = 200, *, newline: bool = False, media_type: str = JSON_UTF8) -> Response:
    """A complete JSON body; ``newline`` mimics Go's ``json.Encoder`` (used by /v1)."""
    body = go_json(obj) + (b"\n" if newline else b"")
    return Response(body, status_code=status, headers={"content-type": media_type})


def ollama_error(status: int, message: str, *, media_type: str | None = None) -> Response:
    """Ollama's native error body ``{"error": "..."}`` (gin's JSON content type unless ``media_type``)."""
    return json_response({"error": message}, status, media_type=media_type or JSON_UTF8)


def openai_error_body(status: int, message: str) -> dict[str, Any]:
    """The ``{"error": {message, type, param, code}}`` shape of ``openai.NewError``."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def openai_error(status: int, message: str, *, from_handler: bool = True) -> Response:
    """OpenAI-shaped error; handler errors pass Go's Encoder (trailing newline, plain type)."""
    if from_handler:
        return json_response(openai_error_body(status, message), status, newline=True, media_type="application/json")
    return json_response(openai_error_body(status, message), status)


def gin_plain(status: int) -> Response:
    """gin's built-in ``404 page not found`` / ``405 method not allowed`` text bodies."""
    text = {404: "404 page not found", 405: "405 method not allowed"}[status]
    return Response(text.encode(), status_code=status, headers={"content-type": "text/plain"})


_DECODE_CONTEXT = {
    "Expecting value": "looking for beginning of value",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Extra data": "after top-level value",
}


def _go_decode_error(doc: str, err: json.JSONDecodeError) -> str:
    """Translate Python's JSON error into the message Go's decoder would give."""
    if err.pos >= len(doc.rstrip()):
        return "unexpected EOF"
    char = doc[err.pos]
    context = _DECODE_CONTEXT.get(err.msg, "looking for beginning of value")
    return f"invalid character {char!r} {context}"


def json_type(value: Any) -> str:
    """The JSON type name Go uses in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "null"


async def read_json_object(request: Request, struct: str, *, empty_message: str) -> dict[str, Any]:
    """Parse the request body as a JSON object or raise :class:`RequestError` (400)."""
    raw = await request.body()
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise RequestError(400, empty_message)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(400, _go_decode_error(text, err)) from None
    if not isinstance(value, dict):
        raise RequestError(400, f"json: cannot unmarshal {json_type(value)} into Go value of type {struct}")
    return value


_GO_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "map[string]interface {}": lambda v: isinstance(v, dict),
    "slice": lambda v: isinstance(v, list),
}


def check_field_types(body: Mapping[str, Any], fields: Mapping[str, tuple[str, str]], struct: str) -> None:
    """Reject fields whose JSON type Go could not unmarshal; ``fields`` maps name -> (check, Go type)."""
    for name, (check, go_type) in fields.items():
        value = body.get(name)
        if value is not None and not _GO_TYPE_CHECKS[check](value):
            short = struct.rsplit(".", 1)[-1]
            raise RequestError(
                400,
                f"json: cannot unmarshal {json_type(value)} into Go struct field {short}.{name} of type {go_type}",
            )


async def pause(milliseconds: float, closing: Callable[[], bool]) -> None:
    """Sleep ``milliseconds`` in short slices; abort the connection if the server is closing."""
    deadline = time.monotonic() + milliseconds / 1000
    while True:
        if closing():
            raise SimulatedCrash("fake server shutting down")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def stream_response(
    frames: Iterator[bytes | Sequence[bytes]],
    *,
    media_type: str,
    delay_ms: float,
    drop_after: int | None,
    closing: Callable[[], bool],
    abandoned: Callable[[], None] = lambda: None,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Send ``frames`` one per chunk; after ``drop_after`` frames abort the TCP connection.

    An item of ``frames`` is one frame, or a group of frames that Ollama writes back to back for one
    of its native chunks (the SSE events a compatibility layer makes of it): ``delay_ms``
    (milliseconds) separates consecutive items, not the frames of a group, while ``drop_after``
    counts every frame.

    ``abandoned`` is called when the client goes away before the last frame (Starlette then
    cancels the body), which is how a proxy cancelling its upstream request shows up here.
    ``headers`` are sent besides the content type.

    Frames are produced lazily so timestamps reflect when each one is sent.
    """

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        try:
            while True:
                if sent and delay_ms:
                    await pause(delay_ms, closing)
                item = next(frames, None)
                if item is None:
                    return
                for frame in [item] if isinstance(item, bytes) else item:
                    if drop_after is not None and sent >= drop_after:
                        raise SimulatedCrash(f"dropped after {sent} chunk(s)")
                    yield frame
                    sent += 1
        except (asyncio.CancelledError, GeneratorExit):
            abandoned()
            raise

    return StreamingResponse(body(), headers={"content-type": media_type, **(headers or {})})


def ndjson_line(obj: Any) -> bytes:
    """One NDJSON frame."""
    return go_json(obj) + b"\n"


def sse_event(obj: Any) -> bytes:
    """One server-sent event carrying JSON."""
    return b"data: " + go_json(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def sse_named(event: str, obj: Any) -> bytes:
    """One server-sent event with an ``event:`` line, as Ollama's Anthropic and Responses layers write it."""
    return f"event: {event}\ndata: ".encode() + go_json(obj) + b"\n\n"


class GoRaw(dict[str, Any]):
    """A JSON object Go keeps as the client sent it (a ``json.RawMessage``): :func:`go_map` leaves it be."""


def go_map(obj: Any) -> Any:
    """``obj`` with every dict's keys sorted, the order Go's ``json.Marshal`` gives a ``map[string]any``
    (a :class:`GoRaw` inside keeps its order)."""
    if isinstance(obj, GoRaw):
        return obj
    if isinstance(obj, Mapping):
        return {key: go_map(obj[key]) for key in sorted(obj)}
    if isinstance(obj, list):
        return [go_map(item) for item in obj]
    return obj


def go_float(value: float) -> float | int:
    """A float64 as Go prints it: whole numbers without a fraction (``1``, not ``1.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
