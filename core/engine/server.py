"""Running the engine: uvicorn (uvloop + httptools) serving the proxy until SIGINT or SIGTERM.

On a signal the server stops accepting, lets requests in flight finish, then the engine finishes its
store writes and saves its totals; the process then exits 0. Once listening it prints one line,
``ollacache: serving on http://HOST:PORT (upstream URL)``, which tells a caller (the tray app, a test)
the actual port when ``--port 0`` was asked for, and on stderr a warning when there is no Ollama to
forward misses to or when the proxy is open to the network.

At the edges: a connection whose request headers do not arrive in time is
closed (:mod:`core.http.header_timeout`: many slow clients cannot hold the proxy's sockets), the soft limit of open
files is raised to
the hard one, and while serving the process creates private files (see :mod:`core.config.private`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Generator
from urllib.parse import urlsplit

import uvicorn

from core.config import private
from core.config.settings import Settings
from core.control import running
from core.control.tls import tls_problem
from core.engine.engine import Engine
from core.engine.startup import is_local, log_dir, prepare
from core.http.header_timeout import HeaderTimeoutProtocol
from core.http.hostcheck import is_loopback_bind
from core.supervision.binary import install_hint
from core.tuning.recommend import TuningError

# SIGHUP (the terminal closed) ends serve as cleanly as SIGTERM, stopping the Ollama it started
HANDLED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
GRACEFUL_SHUTDOWN_S = 10
OPEN_MAX = 10240  # the most open files macOS grants a process, whatever its hard limit says
UVICORN_TICK_S = 0.1  # uvicorn.Server.main_loop's polling period
TICKS_PER_WAKE = 10  # the Date header is refreshed every 10 ticks: once per wake


def event_loop() -> str:
    """uvicorn's event loop: uvloop, the faster, where it exists; asyncio's own on Windows, which uvloop does not
    support (there a frozen build has none)."""
    try:
        import uvloop  # noqa: F401 - only whether it can be imported
    except ImportError:
        return "asyncio"
    return "uvloop"


def raise_open_file_limit() -> int | None:
    """Raise the soft limit of open files to the hard one (POSIX); returns the soft limit now in force.

    Each connection is a file descriptor, and the common soft limit of 1,024 is soon reached by many
    clients. Where the hard limit is unlimited or refused (macOS grants at most :data:`OPEN_MAX`), the
    soft limit is raised to that instead. ``None`` where there are no such limits (Windows).
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    for target in (hard, OPEN_MAX):
        if hard != unlimited and target > hard:
            continue
        if soft == unlimited or (target != unlimited and target <= soft):
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):  # above what the system allows (macOS: OPEN_MAX; Linux: fs.nr_open)
            continue
    return soft


def startup_warnings(engine: Engine) -> list[str]:
    """What a user must know before relying on the proxy: no Ollama behind it, or a bind open to the network."""
    settings, shown = engine.settings, engine.proxy.shown_upstream
    warnings: list[str] = []
    host = settings["proxy.host"]
    if settings["proxy.share"]:
        plain = "" if settings["proxy.tls_cert"] else "; the traffic is plain HTTP, readable on the network"
        warnings.append(
            f"shared on the network at port {settings['proxy.port']}: other computers need one of this install's "
            f"API keys (ollacache keys add NAME){plain}"
        )
    elif not is_loopback_bind(host):
        warnings.append(
            f"listening on {host}, beyond this machine: anyone who can reach this port can use the "
            "proxy and the Ollama behind it, read its cached answers and list them at /-/entries "
            "(the Host check is off); bind to 127.0.0.1 unless that is what you want"
        )
    if engine.offline:
        warnings.append(
            "offline: cached answers are served and every other request is refused (504); "
            f"the upstream at {shown} is never called, and Ollama is neither started nor supervised"
        )
        return warnings
    sv = engine.supervisor.sv
    # at start, "stopped" and "not_installed" mean nothing answers and none is started; "failed" may also
    # mean one answers where ollama.manage is always, which still forwards misses
    if sv.state in ("stopped", "not_installed"):
        if settings["ollama.manage"] == "never":
            why = "ollama.manage is never (start Ollama yourself, or set ollama.manage to auto)"
        elif not is_local(urlsplit(settings["proxy.upstream"]).hostname or ""):
            why = "that is another machine, where Ollacache does not start one"
        elif engine.startup.binary is None and settings["ollama.binary"]:
            why = f"ollama.binary ({settings['ollama.binary']}) is not a file"
        elif engine.startup.binary is None:
            why = f"no ollama program was found (is Ollama installed? {install_hint()})"
        else:
            why = sv.reason
        warnings.append(
            f"no Ollama to forward misses to: nothing answers at {shown} and {why}; hits are "
            "still served, and an Ollama that starts answering there is used"
        )
    return warnings


class _Server(uvicorn.Server):
    """uvicorn's server, announcing its address and exiting normally after a signal."""

    def __init__(self, config: uvicorn.Config, engine: Engine) -> None:
        super().__init__(config)
        self.engine = engine
        self.ready = threading.Event()  # set once listening; lets an embedding thread wait on it
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it serves on, once started

    def stop_from_another_thread(self) -> None:
        """Stop serving as a signal would, from a thread other than the server's (tests, an embedding app)."""
        self.should_exit = True
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.engine.stopping.set)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        if self.engine.startup.plan.takeover:
            print(f"ollacache: port takeover: {self.engine.startup.plan.reason}", flush=True)
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.engine.settings["proxy.tls_cert"] else "http"
        self.url = f"{scheme}://{host}:{port}"
        self.engine.serving_at(self.url)
        upstream = self.engine.proxy.shown_upstream
        shown = f"offline; upstream {upstream} never called" if self.engine.offline else f"upstream {upstream}"
        print(f"ollacache: serving on {self.url} ({shown})", flush=True)
        for warning in startup_warnings(self.engine):
            print(f"ollacache: warning: {warning}", file=sys.stderr, flush=True)
        self.ready.set()

    async def main_loop(self) -> None:
        """uvicorn's loop, woken once a second (and at once on a stop) instead of ten times a second.

        uvicorn polls ``should_exit`` every 0.1 s and refreshes the Date header every tenth tick; here each
        wake counts as ten ticks, so the header still changes every second, and a stop (a signal, or
        :meth:`stop_from_another_thread`) sets ``engine.stopping``, which ends the wait at once. An idle
        engine wakes 10x less for it.
        """
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + TICKS_PER_WAKE) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.engine.stopping.wait(), TICKS_PER_WAKE * UVICORN_TICK_S)
            if self.engine.stopping.is_set():  # a signal, or the control API's shutdown
                self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the signal after shutting down, which ends the process with that signal;
        # a clean shutdown on SIGTERM should exit 0 instead, so only capture here.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: object) -> None:
        self.engine.stopping.set()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


def build_server(settings: Settings) -> _Server:
    """The uvicorn server for ``settings`` (not started); finds Ollama and applies port takeover first.

    Raises :class:`TuningError` for a tuning override the machine cannot honour and ``OSError`` when
    Ollama's log directory cannot be written.
    """
    engine = Engine(prepare(settings))
    settings = engine.settings
    config = uvicorn.Config(
        engine.proxy,
        host=listen_host(settings),
        port=settings["proxy.port"],
        ssl_certfile=settings["proxy.tls_cert"],
        ssl_keyfile=settings["proxy.tls_key"],
        loop=event_loop(),
        http=HeaderTimeoutProtocol,
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
        proxy_headers=False,
    )
    return _Server(config, engine)


def listen_host(settings: Settings) -> str:
    """Where the proxy listens: ``proxy.host``, or every interface when shared and that is loopback."""
    host = settings["proxy.host"]
    return "0.0.0.0" if settings["proxy.share"] and is_loopback_bind(host) else host


def serve(settings: Settings) -> int:
    """Serve until a signal; returns the process exit code (0 after a clean shutdown).

    Everything it writes is private to the user: the config, cache and log directories are tightened
    to 0700 first, and it creates files under umask 077 (the Ollama it starts keeps the user's own).
    """
    raise_open_file_limit()
    with private.private_umask():
        for directory in (settings.config_dir, settings.cache_dir, log_dir(settings)):
            private.tighten(directory)
        return _serve(settings)


def _serve(settings: Settings) -> int:
    if (problem := tls_problem(settings["proxy.tls_cert"], settings["proxy.tls_key"])) is not None:
        print(f"ollacache: {problem}", file=sys.stderr)
        return 2
    try:
        server = build_server(settings)
    except TuningError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"ollacache: cannot write Ollama's log ({error}); set log.dir (--log-dir, OLLACACHE_LOG_DIR) "
            "to a writable directory",
            file=sys.stderr,
        )
        return 2
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say which setting to change
        pass
    finally:
        running.remove(settings.config_dir)
    if not server.started:
        print(
            f"ollacache: could not listen on {server.config.host}:{server.config.port} "
            "(is the port in use? choose another with --port or OLLACACHE_PORT)",
            file=sys.stderr,
        )
        return 1
    return 0
