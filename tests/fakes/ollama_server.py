"""A faithful fake Ollama server for tests: real HTTP, Ollama's wire formats, fault injection.

In-process::

    with serve_in_thread() as (fake, base_url):
        fake.configure(drop_after_chunks=3)
        ...

As a process (prints one line once it accepts connections, exits 0 on SIGTERM/SIGINT)::

    python -m tests.fakes.ollama_server [--host 127.0.0.1] [--port 0]
    fake-ollama listening on http://127.0.0.1:PORT

Control endpoints for other processes: ``GET /_fake/calls``, ``GET|POST
/_fake/config`` (POST merges), ``POST /_fake/reset``.  Configuration keys and
their units are documented in :data:`tests.fakes.fake_config.DEFAULT_CONFIG`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import fake_anthropic, fake_native, fake_openai, fake_responses
from .fake_config import (
    INFERENCE_PATHS,
    default_config,
    display_shortest,
    find_model,
    fresh_digest,
    merge_config,
    model_entry,
)
from .fake_wire import (
    RequestError,
    SimulatedCrash,
    gin_plain,
    install_crash_log_filter,
    json_response,
    pause,
    read_json_object,
    rfc3339_utc_now,
)

ErrorRenderer = Callable[[RequestError], Response]
_RAW_SEND = "fake_ollama.server_send"  # scope key: the server's own send callable
BODIES_KEPT = 10_000  # inference request bodies kept for `FakeOllama.received` (count)


class FakeOllama:
    """State and configuration of one fake Ollama; :attr:`app` is its ASGI application."""

    def __init__(self, **config: Any) -> None:
        self._cond = threading.Condition()
        self._config: dict[str, Any] = merge_config(default_config(), config)
        self._loaded: dict[str, tuple[dict[str, Any], float]] = {}
        self._epoch = 0  # bumped by reset() to release hung requests
        self._closing = threading.Event()
        self.calls: Counter[str] = Counter()
        self._bodies: deque[tuple[str, dict[str, Any]]] = deque(maxlen=BODIES_KEPT)
        self._header_names: deque[tuple[str, frozenset[str]]] = deque(maxlen=BODIES_KEPT)
        self.abandoned_streams = 0  # streamed answers whose client left before the end
        self._starlette = self._build_app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:  # a plain function: ASGI 3
            await self._count_then_route(scope, receive, send)

        self.app: ASGIApp = app
        install_crash_log_filter()

    # -- configuration and counters (called from tests, any thread) -------------------------
    def configure(self, **changes: Any) -> None:
        """Merge ``changes`` into the config (same keys as ``POST /_fake/config``)."""
        with self._cond:
            self._config = merge_config(self._config, changes)

    def config(self) -> dict[str, Any]:
        """A snapshot of the current configuration."""
        with self._cond:
            return copy.deepcopy(self._config)

    def reset(self) -> None:
        """Clear counters, loaded models and config back to defaults; release hung requests."""
        with self._cond:
            self._config = default_config()
            self.calls.clear()
            self._bodies.clear()
            self._header_names.clear()
            self.abandoned_streams = 0
            self._loaded.clear()
            self._epoch += 1
            self._cond.notify_all()

    def total_calls(self, path: str | None = None) -> int:
        """Requests received (failed ones included) on ``path``, or on all paths."""
        with self._cond:
            return self.calls[path] if path is not None else sum(self.calls.values())

    def received(self, path: str) -> list[dict[str, Any]]:
        """JSON object bodies of the requests on inference route ``path`` since the last reset, oldest
        first (the last `BODIES_KEPT` over all routes; other bodies are not kept)."""
        with self._cond:
            return [copy.deepcopy(body) for seen, body in self._bodies if seen == path]

    def header_names(self, path: str | None = None) -> list[frozenset[str]]:
        """The header names of each request received (on ``path``) since the last reset, oldest first (the
        last `BODIES_KEPT`): what a client's request still carried when it got here."""
        with self._cond:
            return [names for seen, names in self._header_names if path is None or seen == path]

    def wait_for_calls(self, count: int, path: str | None = None, timeout: float = 60.0) -> bool:
        """Block until at least ``count`` requests arrived (on ``path``); timeout in seconds (a bound for a loaded
        machine, where a request can take seconds to get through, not a measure)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._total_locked(path) >= count, timeout)

    def wait_for_abandoned(self, count: int, timeout: float = 60.0) -> bool:
        """Block until at least ``count`` streamed answers were abandoned by their client."""
        with self._cond:
            return self._cond.wait_for(lambda: self.abandoned_streams >= count, timeout)

    def _total_locked(self, path: str | None) -> int:
        return self.calls[path] if path is not None else sum(self.calls.values())

    # -- the Host protocol used by the route modules -----------------------------------------
    def closing(self) -> bool:
        """True once the server serving this fake is shutting down."""
        return self._closing.is_set()

    def stream_abandoned(self) -> None:
        """Called when a client leaves in the middle of a streamed answer."""
        with self._cond:
            self.abandoned_streams += 1
            self._cond.notify_all()

    def begin_serving(self) -> None:
        """Called when a server starts serving this fake."""
        self._closing.clear()

    def begin_shutdown(self) -> None:
        """Abort delays and hung requests so the server can stop promptly."""
        self._closing.set()

    def mark_loaded(self, model: Mapping[str, Any]) -> None:
        with self._cond:
            self._loaded[model["name"]] = (dict(model), time.time())

    def mark_unloaded(self, model: Mapping[str, Any]) -> None:
        """Like Ollama expiring the runner of ``model`` (an unload request): it leaves ``/api/ps`` at once."""
        with self._cond:
            self._loaded.pop(model["name"], None)

    def loaded_models(self) -> list[tuple[dict[str, Any], float]]:
        with self._cond:
            return list(self._loaded.values())

    def add_model(self, name: str) -> None:
        with self._cond:
            self._config["models"] = [*self._config["models"], display_shortest(name)]

    def install(self, model: Mapping[str, Any]) -> None:
        """Install ``model`` (a dict like :func:`model_entry`'s), replacing the model of the same name."""
        entry = model_entry(model)
        with self._cond:
            self._config["models"] = [*self._others(entry["name"]), entry]

    def remove_model(self, name: str) -> bool:
        """Remove the installed model ``name`` refers to; whether there was one."""
        with self._cond:
            before = len(self._config["models"])
            self._config["models"] = self._others(name)
            self._loaded.pop(display_shortest(name), None)
            return len(self._config["models"]) < before

    def _others(self, name: str) -> list[Any]:
        wanted = display_shortest(name).lower()
        return [
            spec
            for spec in self._config["models"]
            if display_shortest(str(spec if isinstance(spec, str) else spec["name"])).lower() != wanted
        ]

    def rebuild(self, name: str, digest: str | None = None) -> str:
        """Give installed model ``name`` a new build, as an ``ollama pull`` run against Ollama itself would
        (not through a proxy): a new digest (``digest``, or a fresh one) and modification time. Returns it."""
        with self._cond:
            entry = find_model(self._config, name)
            if entry is None:
                raise KeyError(f"model {name!r} is not installed")
            entry["digest"] = digest or fresh_digest(f"{entry['digest']}:{time.time_ns()}")
            entry["modified_at"] = rfc3339_utc_now()
            self.install(entry)
            return str(entry["digest"])

    def digest_of(self, name: str) -> str | None:
        """The digest of installed model ``name``, or None."""
        with self._cond:
            entry = find_model(self._config, name)
            return None if entry is None else str(entry["digest"])

    # -- request plumbing ---------------------------------------------------------------------
    async def _count_then_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_fake/"):
            with self._cond:
                self.calls[scope["path"]] += 1
                self._header_names.append(
                    (scope["path"], frozenset(name.decode("latin-1").lower() for name, _ in scope["headers"]))
                )
                self._cond.notify_all()
        scope[_RAW_SEND] = send
        await self._starlette(scope, receive, send)

    async def _hang_gate(self) -> None:
        with self._cond:
            epoch = self._epoch
        while True:
            with self._cond:
                if not self._config["hang"] or self._epoch != epoch:
                    return
            if self.closing():
                raise SimulatedCrash("fake server shutting down while hanging")
            await asyncio.sleep(0.02)

    def _take_failure(self) -> tuple[int, str] | None:
        with self._cond:
            status, remaining = self._config["fail_status"], self._config["fail_count"]
            if status is None or (remaining is not None and remaining <= 0):
                return None
            if remaining is not None:
                self._config["fail_count"] = remaining - 1
            return int(status), str(self._config["fail_message"])

    def _endpoint(
        self, path: str, handler: fake_native.Handler, render: ErrorRenderer
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                await self._hang_gate()
                cfg = self.config()
                if path in INFERENCE_PATHS:
                    self._keep_body(path, await request.body())  # cached: the handler reads it again
                    await pause(float(cfg["first_byte_delay_ms"]), self.closing)
                    failure = self._take_failure()
                    if failure is not None:
                        return render(RequestError(*failure))
                return await handler(self, cfg, request)
            except RequestError as err:
                return render(err)
            except SimulatedCrash:  # before any response: drop the connection instead of a 500
                await _drop_connection(request.scope[_RAW_SEND])
                raise

        return endpoint

    def _keep_body(self, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            return
        if isinstance(body, dict):
            with self._cond:
                self._bodies.append((path, body))

    def _build_app(self) -> Starlette:
        routes = [
            Route(path, self._endpoint(path, handler, fake_native.native_error), methods=methods)
            for path, methods, handler in fake_native.ROUTES
        ]
        routes += [
            Route(path, self._endpoint(path, handler, fake_openai.v1_error), methods=methods)
            for path, methods, handler in fake_openai.ROUTES + fake_responses.ROUTES
        ]
        routes += [
            Route(path, self._endpoint(path, handler, fake_anthropic.anthropic_error), methods=methods)
            for path, methods, handler in fake_anthropic.ROUTES
        ]
        routes += [
            Route("/_fake/calls", self._control_calls, methods=["GET"]),
            Route("/_fake/config", self._control_config, methods=["GET", "POST"]),
            Route("/_fake/reset", self._control_reset, methods=["POST"]),
        ]
        handlers = {404: lambda request, exc: gin_plain(404), 405: lambda request, exc: gin_plain(405)}
        return Starlette(routes=routes, exception_handlers=handlers)

    async def _control_calls(self, request: Request) -> Response:
        with self._cond:
            return json_response({"total": sum(self.calls.values()), "by_path": dict(self.calls)})

    async def _control_config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.configure(**await read_json_object(request, "config", empty_message="missing request body"))
            except RequestError as err:
                return json_response({"error": err.message}, err.status)
            except (KeyError, ValueError) as err:
                return json_response({"error": str(err.args[0])}, 400)
        return json_response(self.config())

    async def _control_reset(self, request: Request) -> Response:
        self.reset()
        return json_response({"status": "reset"})


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection under a uvicorn request so no response (not even a 500) is sent.

    ASGI cannot abort a connection before the response starts; uvicorn's ``send``
    is a bound method of its request cycle, which owns the transport.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return
    transport.close()
    for _ in range(100):  # connection_lost() runs on a later loop iteration
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


class _Server(uvicorn.Server):
    """uvicorn server that reports startup, releases hung requests on exit, exits 0 on signals."""

    def __init__(self, fake: FakeOllama, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(
            uvicorn.Config(
                fake.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="none",
                interface="asgi3",
                timeout_graceful_shutdown=3,
            )
        )
        self.fake = fake
        self.started_event = threading.Event()
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._on_started is not None:
            self._on_started()
        self.started_event.set()

    def request_exit(self) -> None:
        self.fake.begin_shutdown()
        self.should_exit = True

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.request_exit()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _listen_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextlib.contextmanager
def serve_in_thread(fake: FakeOllama | None = None) -> Iterator[tuple[FakeOllama, str]]:
    """Serve ``fake`` with uvicorn on 127.0.0.1:<free port> in a thread; yield (fake, base_url)."""
    fake = fake or FakeOllama()
    fake.begin_serving()
    sock = _listen_socket("127.0.0.1", 0)
    server = _Server(fake)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failures.append(exc)
        finally:
            server.started_event.set()

    thread = threading.Thread(target=run, name="fake-ollama", daemon=True)
    thread.start()
    try:
        server.started_event.wait()
        if failures or not server.started:
            raise RuntimeError(f"fake Ollama failed to start: {failures!r}")
        yield fake, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.request_exit()
        thread.join(timeout=10)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """Process mode: serve until SIGTERM/SIGINT, then exit 0."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.ollama_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    sock = _listen_socket(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    fake = FakeOllama()
    server = _Server(fake, on_started=lambda: print(f"fake-ollama listening on {url}", flush=True))
    server.run(sockets=[sock])
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
