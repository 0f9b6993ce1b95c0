"""``ollacache doctor``: checks what Ollacache depends on and says what to fix.

Each check gives a verdict (``ok``, ``warn`` or ``fail``), what it found, and for anything but ``ok`` the
fix. The command exits 1 when any check fails, so scripts can use it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from core.config.parsing import redact
from core.config.settings import Settings
from core.control.client import ControlClient, ControlError, Health, upstream_of
from core.engine.startup import answers, port_free
from core.ollama.client import OllamaError, not_ollama, version_sync
from core.supervision.binary import find_ollama, install_hint
from core.supervision.takeover import OLLAMA_DEFAULT_PORT
from core.tuning.in_force import detect_and_recommend
from core.tuning.recommend import TuningError

Verdict = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    name: str
    verdict: Verdict
    found: str
    fix: str = ""


DIAGNOSIS_TIMEOUT_S = 10.0  # a busy Ollama may take seconds to answer; a diagnosis can wait for it


def check(settings: Settings, env: dict[str, str] | None = None) -> list[Finding]:
    """Run every check against ``settings`` (``env``: the environment clients here would see).

    A running engine (found through ``running.json``) is asked for its ``/-/health`` first: the upstream
    checked, and the address checked for exposure, are then the ones it actually uses.
    """
    env = dict(os.environ) if env is None else env
    findings: list[Finding] = []
    manage = settings["ollama.manage"]
    with ControlClient.from_settings(settings) as client:
        url = client.url
        try:
            health: Health | None = client.health()
        except ControlError:
            health = None
    upstream = upstream_of(health, settings["proxy.upstream"]) if health else settings["proxy.upstream"]

    binary = find_ollama(settings["ollama.binary"])
    if binary is not None:
        findings.append(Finding("ollama binary", "ok", f"{binary.path} (from {binary.source})"))
    else:
        where = (
            f"ollama.binary = {settings['ollama.binary']} does not exist"
            if settings["ollama.binary"]
            else "not on PATH nor in the usual install locations"
        )
        serving = answers(upstream, DIAGNOSIS_TIMEOUT_S)  # an Ollama elsewhere (a container, a service) is fine
        findings.append(
            Finding("ollama binary", "warn" if manage == "never" or serving else "fail", where, install_hint())
        )

    if health is not None:
        ollama = health.get("ollama", {})
        findings.append(
            Finding(
                "proxy",
                "ok",
                f"Ollacache answers at {url} ({health.get('status')}); "
                f"Ollama {ollama.get('state')}: {ollama.get('reason')}",
            )
        )
    elif port_free(settings["proxy.host"], settings["proxy.port"]):
        findings.append(
            Finding(
                "proxy", "warn", f"no Ollacache proxy runs at {url}", "start it with `ollacache serve` (or `make run`)"
            )
        )
    else:
        findings.append(
            Finding(
                "proxy",
                "fail",
                f"port {settings['proxy.port']} is taken by something else",
                "free it, or choose another with --port / OLLACACHE_PORT",
            )
        )
    findings.append(_exposure(settings, health))

    shown = redact(upstream)
    try:
        findings.append(Finding("upstream", "ok", f"Ollama {version_sync(upstream)} answers at {shown}"))
    except OllamaError as error:
        findings.append(
            Finding(
                "upstream",
                "ok",
                f"a server that is not Ollama answers at {shown} ({error.cause}); requests are forwarded to it as "
                "they are, and Ollacache neither starts nor stops Ollama there",
            )
            if not_ollama(error)
            else Finding(
                "upstream",
                "warn" if manage != "never" and binary else "fail",
                f"nothing answers at {shown} ({error.cause})",
                "start Ollama (`ollama serve`), let Ollacache start it (ollama.manage = auto), or set --upstream",
            )
        )

    findings.append(_cache_dir(settings.cache_dir))
    findings.append(_tuning(settings, health))
    findings.append(_bypass(url, health, env))
    return findings


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) means this machine only."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return True  # a name that does not resolve cannot be listened on either; `serve` says so
    return all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def _exposure(settings: Settings, health: Health | None) -> Finding:
    """Warn when the proxy listens beyond loopback: its answers and ``/-/entries`` are then the network's."""
    exposed = []
    if (
        health is not None
        and (bound := urlsplit(str(health["proxy"].get("url", ""))).hostname)
        and not _loopback(bound)
    ):
        exposed.append(f"the running proxy listens on {bound}")
    if not _loopback(settings["proxy.host"]):
        exposed.append(f"proxy.host is {settings['proxy.host']}")
    if not exposed:
        return Finding("network", "ok", f"the proxy listens only on this machine ({settings['proxy.host']})")
    return Finding(
        "network",
        "warn",
        "; ".join(exposed) + ", so other machines can use the proxy, read its "
        "cached answers and list them at /-/entries",
        "set proxy.host = 127.0.0.1 (--host / OLLACACHE_HOST) unless the network is meant to reach "
        "it; then only behind a firewall or an authenticating reverse proxy",
    )


def _cache_dir(directory: Path) -> Finding:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return Finding(
            "cache directory",
            "fail",
            f"{directory} is not writable ({error.strerror or error})",
            "choose another with --cache-dir / OLLACACHE_CACHE_DIR",
        )
    return Finding("cache directory", "ok", str(directory))


def _tuning(settings: Settings, health: Health | None) -> Finding:
    try:
        _, recommendation = detect_and_recommend(settings)
    except TuningError as error:
        return Finding("tuning", "fail", str(error), "fix or remove the tuning setting")
    env = " ".join(f"{name}={value}" for name, value in recommendation.env.items())
    if settings["tuning.inject_options"]:
        return Finding(
            "tuning",
            "warn",
            f"num_thread={recommendation.num_thread.value} is added to requests",
            "Ollama reloads a model whenever a request's num_thread differs from the loaded one, so "
            "clients reaching Ollama directly make it reload back and forth; prefer a supervised "
            "Ollama, whose environment carries the tuning",
        )
    ollama = health.get("ollama") if health else None
    if isinstance(ollama, dict) and ollama.get("state") == "attached":
        return Finding(
            "tuning",
            "warn",
            "Ollama runs on its own, so its environment is not Ollacache's to tune",
            f"start it with {env}, let Ollacache start it (ollama.manage = auto), or use "
            "--inject-options (see the README for the reload caveat)",
        )
    return Finding("tuning", "ok", f"applied through a supervised Ollama's environment: {env}")


def _bypass(url: str, health: Health | None, env: dict[str, str]) -> Finding:
    proxy_port = urlsplit(url).port
    ollama_host = env.get("OLLAMA_HOST", "")
    if ollama_host and str(proxy_port) not in ollama_host:
        return Finding(
            "clients",
            "warn",
            f"OLLAMA_HOST={ollama_host} in this environment points past the proxy",
            f"set OLLAMA_HOST={url} so the ollama CLI and clients go through the cache",
        )
    takeover = bool(health and isinstance(health.get("takeover"), dict) and health["takeover"].get("on"))
    if not takeover and proxy_port != OLLAMA_DEFAULT_PORT and answers(f"http://127.0.0.1:{OLLAMA_DEFAULT_PORT}"):
        return Finding(
            "clients",
            "warn",
            f"Ollama (or another server) answers on its default port {OLLAMA_DEFAULT_PORT}, so tools "
            "using the default address bypass the cache",
            f"point them at {url}, or let Ollacache start Ollama with port takeover on",
        )
    return Finding("clients", "ok", f"no sign of clients bypassing the proxy at {url}")


def format_findings(findings: list[Finding]) -> str:
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
    lines = []
    for finding in findings:
        lines.append(f"[{marks[finding.verdict]}] {finding.name}: {finding.found}")
        if finding.fix:
            lines.append(f"       fix: {finding.fix}")
    return "\n".join(lines)
