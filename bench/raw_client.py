"""The miss benches' client: Ollama requests over one keep-alive raw socket, timed to the first and last byte.

A raw socket rather than an HTTP library, so that a figure is the server's time and not a client's; it
reads just enough of an answer (its Content-Length, or the end of a chunked body) to know when it is whole.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raw_upstream import LENGTH_RE


class Conn:
    """One keep-alive raw-socket connection; :meth:`exchange` times one answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(self, request: bytes) -> tuple[bytes, float, float]:
        """Send ``request``; returns (lower-cased head, us to the first body byte, us to the last byte)."""
        sock, data, need, first = self.sock, b"", -1, 0  # need: the answer's size once known; -2 = chunked
        started = time.perf_counter_ns()
        sock.sendall(request)
        while True:
            piece = sock.recv(65536)
            now = time.perf_counter_ns()
            if not piece:
                raise ConnectionError(f"{self.url} closed the connection")
            data += piece
            if need == -1 and (end := data.find(b"\r\n\r\n")) >= 0:
                head = data[:end].lower()
                found = LENGTH_RE.search(head)
                need = end + 4 + int(found[1]) if found else -2
            if need != -1 and not first and len(data) > end + 4:
                first = now
            if len(data) >= need >= 0 or (need == -2 and data.endswith(b"\r\n0\r\n\r\n")):
                return head, (first - started) / 1000, (now - started) / 1000

    def close(self) -> None:
        self.sock.close()


def body_for(path: str, prompt: str) -> bytes:
    """A non-streamed /api/chat or a streamed (Ollama's default) /api/generate request."""
    if path == "/api/chat":
        doc: dict[str, Any] = {
            "model": "llama3.2",
            "stream": False,
            "options": {"temperature": 0},
            "messages": [{"role": "user", "content": prompt}],
        }
    else:
        doc = {"model": "llama3.2", "prompt": prompt, "options": {"temperature": 0}}
    return json.dumps(doc, separators=(",", ":")).encode()
