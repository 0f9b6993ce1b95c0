"""Changing a running engine's configuration: a thread count put in force (a tuning run's winner, or the
user's choice), and the settings table read and written for the settings window (``GET`` and
``PUT /-/settings``).

What changes at once is what Ollama takes from its environment (a supervised Ollama restarts with it), the
thread count injected into requests, the part of the cache key those settings make, and the settings
applied at once (the sampling policy: ``cache.sampling``, ``cache.bucket``); everything else is
written to ``config.toml`` and waits for an engine restart. The functions take the engine as
:class:`Reconfigurable`: the parts of it they read and replace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from core.cache.request.decision import Policy
from core.cache.request.requests import RequestKeys
from core.config.file import write_settings
from core.config.settings import (
    APPLIED_AT_ONCE,
    DEFAULT,
    OLLAMA_RESTART,
    SECTIONS,
    SPEC_BY_NAME,
    SettingError,
    Settings,
    Source,
    reread,
)
from core.config.specs_ollama_server import SERVER_VARIABLES
from core.config.table import Refused, check, shown_text
from core.config.table import rows as settings_rows
from core.engine.startup import Startup
from core.hardware.detect import Hardware
from core.http.proxy import Proxy
from core.supervision.process import Supervisor
from core.tuning.in_force import ollama_env, overrides
from core.tuning.recommend import ENV_NAMES, Recommendation, TuningError, recommend


class Reconfigurable(Protocol):
    """What a reconfiguration reads, and replaces (``settings``, ``tuning``)."""

    settings: Settings
    tuning: Recommendation
    hardware: Hardware
    startup: Startup
    supervisor: Supervisor
    proxy: Proxy
    keys: RequestKeys


async def apply_threads(engine: Reconfigurable, num_thread: int) -> dict[str, Any]:
    """Use ``num_thread`` from now on: a supervised Ollama's environment (it restarts) and injection.

    Raises :class:`core.tuning.recommend.TuningError` for a count the machine cannot honour.
    """
    settings = engine.settings
    engine.tuning = recommend(engine.hardware, {**overrides(settings), "tuning.num_thread": num_thread})
    engine.supervisor.set_env(ollama_env(settings, engine.tuning))
    engine.proxy.use_threads(num_thread)
    reply: dict[str, Any] = {"num_thread": num_thread}
    variable = ENV_NAMES["num_thread"]
    if variable in settings["ollama.env"]:
        reply["note"] = f"ollama.env sets {variable}, which wins over this value"
    if not engine.supervisor.supervising:
        reply["ollama_restart"] = (
            f"Ollama is not supervised by Ollacache: restart it yourself with {variable}={num_thread}"
        )
        return reply
    refusal = await engine.supervisor.restart()
    reply["ollama_restart"] = refusal or "restarting with the new environment"
    return reply


def settings_table(engine: Reconfigurable) -> dict[str, Any]:
    """Every setting as ``config.toml``, the environment and the flags say now (``GET /-/settings``);
    ``pending`` marks a value not in force yet (it waits for a restart). A file that no longer reads
    gives the settings in force, and ``file_error`` says why."""
    file_error = None
    try:
        configured = reread(engine.settings)
    except SettingError as error:
        configured, file_error = engine.settings, str(error)
    rows = settings_rows(configured, engine.settings)
    for row in rows:
        if row["shown"]["text"] is None and (known := _known_default(engine, row["name"])) is not None:
            row["shown"] = {"text": known[0], "origin": known[1]}
    return {"settings": rows, "file": str(engine.settings.file), "sections": list(SECTIONS), "file_error": file_error}


def _known_default(engine: Reconfigurable, name: str) -> tuple[str, str] | None:
    """What a setting left unset means on this machine, and why: the folders in use, the Ollama program found,
    the tuned values (the detected hardware's reason), what Ollama does without a server variable."""
    if name == "cache.dir":
        return str(engine.settings.cache_dir), "default: your user cache folder"
    if name == "log.dir":
        return str(engine.startup.log_path.parent), "default: your user log folder"
    if name == "ollama.models_dir":
        return "Ollama's own folder", "OLLAMA_MODELS unset"
    if name == "ollama.binary":
        found = engine.supervisor.binary
        return (found.path, f"found ({found.source})") if found else ("not found", "Ollama is not installed")
    if name in ("proxy.tls_cert", "proxy.tls_key"):
        return "none", "default: plain HTTP (no certificate given)"
    if (server := SERVER_VARIABLES.get(name)) is not None:
        return server.unset, f"Ollama's default, {server.variable} unset"
    head, _, key = name.partition(".")
    choice = getattr(engine.tuning, key, None) if head == "tuning" else None
    if choice is None or not hasattr(choice, "reason"):
        return None
    text = "left to Ollama" if choice.value is None else shown_text(SPEC_BY_NAME[name], choice.value)
    return text or "", f"detected: {choice.reason}"


async def update_settings(engine: Reconfigurable, changes: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Write ``changes`` (names and values as the file takes them) to ``config.toml``, all or none, and
    put in force what can be: the settings Ollama takes from its environment restart a supervised Ollama
    with them, the sampling policy is applied from the next request on; the rest wait for an engine
    restart (a value already in force is "applied"). Returns, per setting, what happened.

    Raises :class:`core.config.table.Refused` for an unknown name, a bad value, a value this machine
    cannot honour (400), a setting the environment or a flag sets, or a file that cannot be read or
    written (409); nothing is written then. ``dry_run``: the same checks, then nothing written or applied
    (each setting's result is "valid").
    """
    # no await until the file is written: two calls cannot interleave their read and write
    try:
        configured = reread(engine.settings)
    except SettingError as error:
        raise Refused(409, f"nothing was changed: {error}") from None
    checked = check(changes, configured)
    unchanged = {name for name, value in checked.parsed.items() if value == engine.settings[name]}
    live = {
        name: value
        for name, value in checked.parsed.items()
        if SPEC_BY_NAME[name].effect in (OLLAMA_RESTART, APPLIED_AT_ONCE) and name not in unchanged
    }
    now = {name: value for name, value in live.items() if SPEC_BY_NAME[name].effect == OLLAMA_RESTART}
    written = {name: value for name, value in live.items() if checked.raw[name] is not None}
    in_force = engine.settings.changed(written, Source("file", str(engine.settings.file))).changed(
        {name: value for name, value in live.items() if name not in written}, DEFAULT
    )
    tuning = engine.tuning
    if now:
        try:
            tuning = recommend(engine.hardware, overrides(in_force))
        except TuningError as error:
            raise Refused(400, f"nothing was changed: {error}", {error.name: str(error)}) from None
    if dry_run:
        return {
            "dry_run": True,
            "changes": {
                name: {
                    "effect": SPEC_BY_NAME[name].effect,
                    "result": "valid",
                    "message": "checked; nothing was written",
                }
                for name in checked.raw
            },
        }
    try:
        path = write_settings(engine.settings.config_dir, checked.raw)
    except (OSError, ValueError) as error:  # tomlkit's ParseError is a ValueError
        raise Refused(409, f"nothing was changed: cannot write {engine.settings.file}: {error}") from None
    outcome: dict[str, dict[str, str]] = {
        name: {"effect": SPEC_BY_NAME[name].effect, "result": "applied", "message": "written; already in force"}
        if name in unchanged
        else {
            "effect": SPEC_BY_NAME[name].effect,
            "result": "needs engine restart",
            "message": "written; in force when the engine restarts",
        }
        for name in checked.raw
        if name not in live
    }
    if live.keys() - now.keys():
        outcome.update(_use_cache_settings(engine, in_force, live.keys() - now.keys()))
    if now:
        outcome.update(await _use_ollama_settings(engine, in_force, tuning, now))
    return {"file": str(path), "changes": outcome}


def _use_cache_settings(engine: Reconfigurable, in_force: Settings, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Settings applied at once, in force: the sampling policy the proxy decides by (``cache.sampling``,
    ``cache.bucket``) from the next request on."""
    engine.settings = in_force
    engine.proxy.use_policy(Policy(in_force["cache.sampling"], in_force["cache.bucket"]))
    return {
        name: {"effect": APPLIED_AT_ONCE, "result": "applied", "message": "written; in force now"} for name in names
    }


async def _use_ollama_settings(
    engine: Reconfigurable, in_force: Settings, tuning: Recommendation, names: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Settings Ollama takes from its environment, in force: the tuning, a supervised Ollama's
    environment (it restarts), injection and the cache key's context."""
    engine.settings, engine.tuning = in_force, tuning
    engine.supervisor.set_env(ollama_env(in_force, tuning))
    engine.proxy.use_threads(tuning.num_thread.value)  # the key takes the new settings when Ollama restarts with them
    if not engine.supervisor.supervising:
        result, message = (
            "needs Ollama restart",
            ("Ollama is not supervised by Ollacache: it takes this only from its own environment, when it restarts"),
        )
    else:
        refusal = await engine.supervisor.restart()
        result, message = (
            ("needs Ollama restart", refusal)
            if refusal
            else ("Ollama restarted", "Ollama is restarting with the new environment")
        )
    return {name: {"effect": OLLAMA_RESTART, "result": result, "message": message} for name in names}
