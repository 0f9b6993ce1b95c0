"""A minimal Ollama-like server for ``ollacache selftest``: one installed model and one answer.

It answers ``GET /api/version``, ``GET /api/tags`` (the model :data:`MODEL` and its digest, which the
proxy puts in its cache keys), ``GET /api/ps`` and ``POST /api/chat`` (always :data:`ANSWER`, as one JSON
object or, when ``stream`` is not false, as Ollama's NDJSON frames); everything else is a 404. It runs on
127.0.0.1 on a free port in a thread of its own and counts the chats it answered, so the selftest can tell
a cached answer from a forwarded one. It is part of the app (a frozen build has no test fakes).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MODEL = "selftest:latest"
DIGEST = "5e1f7e5700000000000000000000000000000000000000000000000000000000"
ANSWER = "pong"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the selftest prints its own account
        pass

    def do_GET(self) -> None:
        if self.path == "/api/version":
            self._json({"version": "0.0.0-selftest"})
        elif self.path == "/api/tags":
            self._json(
                {
                    "models": [
                        {
                            "name": MODEL,
                            "model": MODEL,
                            "modified_at": _now(),
                            "size": 1,
                            "digest": DIGEST,
                            "details": {"format": "gguf", "family": "selftest"},
                        }
                    ]
                }
            )
        elif self.path == "/api/ps":
            self._json({"models": []})
        else:
            self._json({"error": "not found"}, 404)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/api/chat":
            self._json({"error": "not found"}, 404)
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json({"error": "invalid JSON"}, 400)
            return
        with self.server.lock:
            self.server.chats += 1
        model = body.get("model") or MODEL
        done = {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ANSWER},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "load_duration": 0,
            "prompt_eval_count": 1,
            "prompt_eval_duration": 500,
            "eval_count": 1,
            "eval_duration": 500,
        }
        if body.get("stream") is False:
            self._json(done)
            return
        first = {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ANSWER},
            "done": False,
        }
        last = {**done, "message": {"role": "assistant", "content": ""}}
        self._send(b"".join(json.dumps(frame).encode() + b"\n" for frame in (first, last)), "application/x-ndjson")

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(json.dumps(value).encode(), "application/json; charset=utf-8", status)

    def _send(self, data: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    chats: int
    lock: threading.Lock


class SelftestUpstream:
    """The server, as a context manager: :attr:`url` while it runs, :attr:`chats` answered so far."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.chats = 0
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="selftest-upstream", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def chats(self) -> int:
        with self._server.lock:
            return self._server.chats

    def __enter__(self) -> SelftestUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
