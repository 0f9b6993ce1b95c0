"""Before serving: find Ollama, see whether one already answers, and decide the addresses.

This runs once, before the proxy binds, because port takeover changes where the proxy listens.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from core.config.settings import APP_AUTHOR, APP_NAME, Settings
from core.http.hostcheck import local_addresses
from core.supervision.binary import Found, find_ollama
from core.supervision.takeover import OLLAMA_DEFAULT_PORT, Plan, plan

PROBE_TIMEOUT_S = 1.0
LOG_FILE = "ollama.log"


@dataclass(frozen=True)
class Startup:
    """The settings to serve with (takeover applied), the binary, and the decisions taken."""

    settings: Settings
    binary: Found | None
    will_start: bool
    plan: Plan
    log_path: Path


def answers(upstream: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a server answers at ``upstream`` within ``timeout_s`` (short at start-up, where it decides what to
    start; longer for a diagnosis): an Ollama telling its version (``GET /api/version``), or another server that
    is up there (an OpenAI-compatible one, which Ollacache must not try to replace with an Ollama of its own)."""
    # imported here: the tray app reads log_dir from this module, and the Ollama client library
    # (with pydantic) is most of a second of its start, before the icon could be shown
    from core.ollama.client import OllamaError, not_ollama, version_sync

    try:
        version_sync(upstream, timeout=timeout_s)
    except OllamaError as error:
        return not_ollama(error)
    return True


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now.

    Like uvicorn's own bind, the probe sets SO_REUSEADDR on POSIX, so the TIME_WAIT connections a
    just-stopped Ollacache leaves on 11434 do not count as the port being in use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def should_start(manage: str, binary_found: bool, answered: bool, local: bool) -> bool:
    """Whether Ollacache starts Ollama: only one for this machine; a remote upstream is attached to or not at all."""
    return binary_found and local and (manage == "always" or (manage == "auto" and not answered))


def is_local(host: str) -> bool:
    """Whether ``host`` names this machine (loopback, or one of its interface addresses)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() == socket.gethostname().lower()
    return address.is_loopback or address.is_unspecified or host in local_addresses()


def log_dir(settings: Settings) -> Path:
    return Path(settings["log.dir"]) if settings["log.dir"] else Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


def prepare(settings: Settings) -> Startup:
    """Probe and decide; raises OSError when the log directory cannot be written.

    Offline (``proxy.offline``) nothing is probed or started: the upstream is never called."""
    offline = settings["proxy.offline"]
    manage = settings["ollama.manage"]
    binary = find_ollama(settings["ollama.binary"]) if manage != "never" and not offline else None
    upstream = settings["proxy.upstream"]
    answered = not offline and answers(upstream)
    will_start = should_start(manage, binary is not None, answered, is_local(urlsplit(upstream).hostname or ""))
    decided = plan(
        setting_on=settings["ollama.port_takeover"],
        will_start_ollama=will_start,
        default_port_free=will_start and port_free("127.0.0.1", OLLAMA_DEFAULT_PORT),
        proxy_host=settings["proxy.host"],
        proxy_port=settings["proxy.port"],
        upstream=upstream,
    )
    if decided.takeover:
        settings = replace(
            settings, values={**settings.values, "proxy.port": decided.proxy_port, "proxy.upstream": decided.upstream}
        )
    path = log_dir(settings) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a"):
        pass
    return Startup(settings, binary, will_start, decided, path)
