"""The miss benches' upstream: a minimal HTTP/1.1 server on raw asyncio sockets, run as a child process.

It stands in for Ollama so that what a miss bench measures is the proxy and not a framework behind it:
``/api/chat`` answers a fixed ~1 KB JSON with a Content-Length, ``/api/generate`` streams ``--chunks``
NDJSON lines (chunked, one write per line, ``--chunk-gap-ms`` apart; 0 = as fast as it can), both ending as
Ollama ends an answer so the proxy records and stores every one. Like cpp-httplib it writes a response's
head and its body in two writes. ``--mode nodelay`` sets TCP_NODELAY (as Go's Ollama does); ``--mode nagle``
does not (as cpp-httplib servers do not), so its second write waits for the ACK of the first.

Started by :func:`start_upstream` on the server core; it prints its URL on stdout and serves until killed:

    .venv/bin/python bench/raw_upstream.py [--mode nodelay|nagle] [--chunks 32] [--chunk-gap-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, SERVER_CPU, Stack, taskset

#: A request's or an answer's Content-Length, searched in a lower-cased head.
LENGTH_RE = re.compile(rb"\r\ncontent-length: *(\d+)")

CHAT_ANSWER = json.dumps(
    {
        "model": "llama3.2",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "message": {"role": "assistant", "content": " ".join(["token"] * 150)},
        "done_reason": "stop",
        "done": True,
        "total_duration": 1,
        "load_duration": 1,
        "prompt_eval_count": 10,
        "prompt_eval_duration": 1,
        "eval_count": 150,
        "eval_duration": 1,
    },
    separators=(",", ":"),
).encode()


def generate_lines(chunks: int) -> list[bytes]:
    """The NDJSON lines of a streamed /api/generate answer: ``chunks - 1`` tokens and a final chunk."""
    line = (
        json.dumps(
            {"model": "llama3.2", "created_at": "2026-01-01T00:00:00.000000Z", "response": " token", "done": False},
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    last = (
        json.dumps(
            {
                "model": "llama3.2",
                "created_at": "2026-01-01T00:00:00.000000Z",
                "response": "",
                "done": True,
                "done_reason": "stop",
                "total_duration": 1,
                "prompt_eval_count": 10,
                "eval_count": chunks - 1,
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    return [line] * (chunks - 1) + [last]


async def serve_upstream(nodelay: bool, chunks: int, chunk_gap_s: float) -> None:
    """Serve the two answers on 127.0.0.1 (a kernel-picked port, printed on stdout) until killed."""
    chat_head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: " + str(len(CHAT_ANSWER)).encode() + b"\r\n\r\n"
    )
    stream_head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed = [f"{len(line):x}\r\n".encode() + line + b"\r\n" for line in generate_lines(chunks)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))  # asyncio sets it by default
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                found = LENGTH_RE.search(head.lower())
                await reader.readexactly(int(found[1]) if found else 0)
                path = head.split(b" ", 2)[1]
                if path == b"/api/generate":
                    writer.write(stream_head)  # head and body in separate writes, as cpp-httplib does
                    for piece in framed:
                        if chunk_gap_s:
                            await asyncio.sleep(chunk_gap_s)
                        writer.write(piece)
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(chat_head)
                    writer.write(CHAT_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def serve(nodelay: bool, chunks: int, chunk_gap_ms: float) -> int:
    """Run :func:`serve_upstream` in this process until interrupted; the exit status."""
    try:
        asyncio.run(serve_upstream(nodelay, max(2, chunks), max(0.0, chunk_gap_ms) / 1000))
    except KeyboardInterrupt:
        pass
    return 0


def start_upstream(stack: Stack, nodelay: bool, chunks: int, chunk_gap_ms: float) -> str:
    """This upstream in a child process on the server core; its URL becomes the proxy's upstream."""
    cmd = [
        *taskset(SERVER_CPU),
        PYTHON,
        str(Path(__file__).resolve()),
        "--mode",
        "nodelay" if nodelay else "nagle",
        "--chunks",
        str(chunks),
        "--chunk-gap-ms",
        str(chunk_gap_ms),
    ]
    _, stack.fake_url = stack._start("upstream", cmd)  # noqa: SLF001 - the Stack's own way to start a child
    return stack.fake_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("nodelay", "nagle"), default="nodelay", help="the upstream's TCP_NODELAY")
    parser.add_argument("--chunks", type=int, default=32, help="NDJSON lines of a streamed answer (default 32)")
    parser.add_argument("--chunk-gap-ms", type=float, default=0.0, help="pause between streamed lines (default 0)")
    args = parser.parse_args(argv)
    return serve(args.mode != "nagle", args.chunks, args.chunk_gap_ms)


if __name__ == "__main__":
    sys.exit(main())
