"""A stand-in for the real ``ollama`` executable, for process tests (run it as ``tests/fakes/bin/ollama``).

``ollama serve`` serves the fake Ollama API (:class:`tests.fakes.ollama_server.FakeOllama`) with uvicorn
at ``$OLLAMA_HOST``, read as Ollama reads it (:func:`parse_host`), and logs on stderr in Ollama's format,
among others ``... msg="Listening on 127.0.0.1:11444 (version 0.12.0)"`` once it accepts connections
(with port 0 the port picked is in that line). It exits 0 on SIGTERM or SIGINT; a port in use is
``Error: listen tcp 127.0.0.1:11434: bind: address already in use`` and status 1, as with Ollama.

``ollama --version`` (or ``-v``) asks the server at ``$OLLAMA_HOST`` like the real one: ``ollama version
is 0.12.0`` when it answers, else ``Warning: could not connect to a running Ollama instance`` and
``Warning: client version is 0.12.0``; status 0 either way. Other commands are not faked (status 1).

Environment, read at start:

- ``FAKE_OLLAMA_VERSION``: the version served and printed (default ``0.12.0``).
- ``FAKE_OLLAMA_EXIT_AT_START=N``: print an error and exit with status N (e.g. 1) before listening.
- ``FAKE_OLLAMA_START_DELAY_S=S``: wait S seconds before listening, like an Ollama slow to start.
- ``FAKE_OLLAMA_CRASH_AFTER_S=S``: S seconds after it starts listening, panic like Go (status 2).
- ``FAKE_OLLAMA_HANG=1``: accept connections but never answer the Ollama API (``/_fake/*`` still answer).
- ``FAKE_OLLAMA_IGNORE_TERM=1``: log SIGTERM and carry on; only SIGKILL (or SIGINT) ends it.
- ``FAKE_OLLAMA_SPAWN_RUNNER=1``: start a child process, like Ollama's runner; it ends when this one does.
- ``FAKE_OLLAMA_RUNNERS=1``: a runner process per loaded model, as Ollama starts them, its command line naming
  the model's file with ``--model`` (:mod:`tests.fakes.fake_runners`); it ends when the model is unloaded.
- ``OLLAMA_MODELS``: the models folder, whose ``blobs/`` the Modelfiles of ``/api/show`` and the runners name.

Control endpoints, besides the fake server's own (``/_fake/config``, ``/_fake/calls``, ``/_fake/reset``):

- ``POST /_fake/crash``: answer, then panic like Go and exit with status 2 at once (a runner crash).
- ``POST /_fake/exit``: answer, then exit with status 0.
- ``POST /_fake/hang``: stop answering the Ollama API, ``/api/version`` included.
- ``GET /_fake/env``: ``{"pid": ..., "runner_pid": ... or null, "runners": {model: pid}, "env": {...}}``,
  ``runners`` the runner of each loaded model (under ``FAKE_OLLAMA_RUNNERS=1``), ``env`` holding the
  variables it was started with whose names start with ``OLLAMA_`` or ``LLAMA_``.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_VERSION = "0.12.0"
DEFAULT_PORT = 11434
ENV_PREFIXES = ("OLLAMA_", "LLAMA_")
CONTROL_PATHS = frozenset({"/_fake/crash", "/_fake/exit", "/_fake/hang", "/_fake/env"})


def parse_host(value: str) -> tuple[str, int]:
    """(host, port) to listen on from ``OLLAMA_HOST``, as Ollama's ``envconfig.Host`` reads it.

    ``127.0.0.1:11444``, ``http://127.0.0.1:11444``, ``0.0.0.0`` (port 11434), ``:11444`` (every
    interface: host ``""``), ``[::1]:11444``, ``localhost``; empty is ``127.0.0.1:11434``. A scheme
    without a port means its own port (``http://host`` is 80), and a bad port the default, as in Ollama.
    """
    text = value.strip()
    scheme, has_scheme, hostport = text.partition("://")
    default_port = DEFAULT_PORT
    if not has_scheme:
        hostport = text
    elif scheme in ("http", "https"):
        default_port = 80 if scheme == "http" else 443
    hostport = hostport.split("/", 1)[0]
    split = _split_host_port(hostport)
    if split is None:  # no port: an IP (brackets allowed), a name, or nothing
        return hostport.strip("[]") or "127.0.0.1", default_port
    host, port_text = split
    port = int(port_text) if port_text.isdigit() else -1
    return host, port if 0 <= port <= 65535 else default_port


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: ``None`` where it fails (no port, or an IPv6 address without brackets)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address, as Go prints addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log(msg: str, *, level: str = "INFO", source: str = "routes.go:1951", **attrs: object) -> None:
    """One line on stderr in the format of Ollama's log (Go's slog text handler)."""
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fields = {"time": stamp, "level": level, "source": source, "msg": msg, **attrs}
    print(" ".join(f"{key}={_quote(str(value))}" for key, value in fields.items()), file=sys.stderr, flush=True)


def _quote(value: str) -> str:
    return json.dumps(value) if not value or any(c in value for c in ' ="\\') or not value.isprintable() else value


def ollama_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables whose names start with ``OLLAMA_`` or ``LLAMA_``."""
    return {name: value for name, value in sorted(env.items()) if name.startswith(ENV_PREFIXES)}


def die(status: int, panic: str | None = None) -> None:
    """Exit at once with ``status``, after a Go-style panic on stderr when ``panic`` is given."""
    if panic is not None:
        print(
            f"panic: {panic}\n\ngoroutine 1 [running]:\nmain.main()\n\t/fake/ollama/main.go:12 +0x1d\n"
            f"exit status {status}",
            file=sys.stderr,
            flush=True,
        )
    sys.stdout.flush()
    os._exit(status)


def serve(env: Mapping[str, str]) -> int:
    """``ollama serve``: listen at ``$OLLAMA_HOST`` until SIGTERM or SIGINT, then return 0."""
    ignore_term = env.get("FAKE_OLLAMA_IGNORE_TERM") == "1"
    if ignore_term:  # from the very start; the server's handler logs it once it runs
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    version = env.get("FAKE_OLLAMA_VERSION") or DEFAULT_VERSION
    host, port = parse_host(env.get("OLLAMA_HOST", ""))
    started_env = ollama_env(env)
    log("server config", env="map[" + " ".join(f"{k}:{v}" for k, v in started_env.items()) + "]")
    if env.get("FAKE_OLLAMA_EXIT_AT_START"):
        print(
            f"Error: fake failure at start (FAKE_OLLAMA_EXIT_AT_START={env['FAKE_OLLAMA_EXIT_AT_START']})",
            file=sys.stderr,
            flush=True,
        )
        return int(env["FAKE_OLLAMA_EXIT_AT_START"])
    if env.get("FAKE_OLLAMA_START_DELAY_S"):
        time.sleep(float(env["FAKE_OLLAMA_START_DELAY_S"]))  # the simulated slow start, not a synchronisation
    try:
        sock = _bind(host, port)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        print(f"Error: listen tcp {join_host_port(host, port)}: bind: {reason}", file=sys.stderr, flush=True)
        return 1
    runner = _start_runner() if env.get("FAKE_OLLAMA_SPAWN_RUNNER") == "1" else None
    try:
        _run_server(sock, version, started_env, env, runner, ignore_term)
    finally:
        sock.close()
        if runner is not None and runner.stdin is not None:
            runner.stdin.close()  # the runner reads until EOF, then exits
            runner.wait(timeout=10)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _start_runner() -> subprocess.Popen[bytes]:
    """A child like Ollama's runner: it reads its stdin until EOF, i.e. until this process is gone."""
    runner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.buffer.read()"], stdin=subprocess.PIPE)
    log("starting runner", source="server.go:438", cmd=f"{sys.executable} runner", pid=runner.pid)
    return runner


def _run_server(
    sock: socket.socket,
    version: str,
    started_env: dict[str, str],
    env: Mapping[str, str],
    runner: subprocess.Popen[bytes] | None,
    ignore_term: bool,
) -> None:
    """Serve the fake API and the control endpoints on ``sock`` until told to stop (imports uvicorn)."""
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send

    from tests.fakes.fake_runners import RunnerOllama
    from tests.fakes.ollama_server import FakeOllama

    if env.get("FAKE_OLLAMA_RUNNERS") == "1":
        fake: FakeOllama = RunnerOllama(version=version, hang=env.get("FAKE_OLLAMA_HANG") == "1")
    else:
        fake = FakeOllama(version=version, hang=env.get("FAKE_OLLAMA_HANG") == "1")
    fake.configure(models_dir=env.get("OLLAMA_MODELS") or None)

    async def crash(request: Request) -> JSONResponse:
        return JSONResponse({"status": "crashing"}, background=BackgroundTask(_die_now, 2, "fake runner crash"))

    async def exit_(request: Request) -> JSONResponse:
        return JSONResponse({"status": "exiting"}, background=BackgroundTask(_die_now, 0, None))

    async def hang(request: Request) -> JSONResponse:
        fake.configure(hang=True)
        return JSONResponse({"status": "hanging"})

    async def show_env(request: Request) -> JSONResponse:
        runners = fake.runner_pids() if isinstance(fake, RunnerOllama) else {}
        return JSONResponse(
            {"pid": os.getpid(), "runner_pid": runner.pid if runner else None, "runners": runners, "env": started_env}
        )

    control = Starlette(
        routes=[
            Route("/_fake/crash", crash, methods=["POST"]),
            Route("/_fake/exit", exit_, methods=["POST"]),
            Route("/_fake/hang", hang, methods=["POST"]),
            Route("/_fake/env", show_env, methods=["GET"]),
        ]
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        target = control if scope["type"] == "http" and scope["path"] in CONTROL_PATHS else fake.app
        await target(scope, receive, send)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            bound = sock.getsockname()
            log(f"Listening on {join_host_port(bound[0], bound[1])} (version {version})", source="routes.go:2008")
            if env.get("FAKE_OLLAMA_CRASH_AFTER_S"):
                delay = float(env["FAKE_OLLAMA_CRASH_AFTER_S"])
                asyncio.get_running_loop().call_later(delay, die, 2, "fake crash (FAKE_OLLAMA_CRASH_AFTER_S)")

        def handle_exit(self, sig: int, frame: Any) -> None:  # exit 0, never re-raise the signal
            if sig == signal.SIGTERM and ignore_term:
                log("received SIGTERM, ignoring it (FAKE_OLLAMA_IGNORE_TERM=1)", level="WARN", source="fake")
                return
            fake.begin_shutdown()
            self.should_exit = True

    fake.begin_serving()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        interface="asgi3",
        timeout_graceful_shutdown=3,
    )
    try:
        Server(config).run(sockets=[sock])
    finally:
        if isinstance(fake, RunnerOllama):
            fake.close()


async def _die_now(status: int, panic: str | None) -> None:
    die(status, panic)


def version_command(env: Mapping[str, str]) -> int:
    """``ollama --version``: ask the server at ``$OLLAMA_HOST``, print what the real one prints."""
    client_version = env.get("FAKE_OLLAMA_VERSION") or DEFAULT_VERSION
    host, port = parse_host(env.get("OLLAMA_HOST", ""))
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # envconfig.ConnectableHost
    server_version = ""
    try:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        connection.request("GET", "/api/version")
        server_version = str(json.loads(connection.getresponse().read())["version"])
        connection.close()
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != client_version:
        print(f"Warning: client version is {client_version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        return serve(os.environ)
    if args[:1] in (["--version"], ["-v"]):
        return version_command(os.environ)
    command = args[0] if args else ""
    print(f'Error: unknown command "{command}" for "ollama" (the fake knows serve and --version)', file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
