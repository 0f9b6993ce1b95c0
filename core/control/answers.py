"""The shapes of the control API's answers, as the control client returns them (TypedDicts).

Times are seconds since the epoch unless a name says otherwise (``uptime_s``, ``duration_s``).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class ProxyInfo(TypedDict):
    url: str
    upstream: str


class StoreHealth(TypedDict):
    ok: bool
    error: str | None
    location: str


class UpstreamHealth(TypedDict):
    url: str
    reachable: bool
    version: str | None
    error: str | None


class Takeover(TypedDict):
    on: bool
    reason: str


class OllamaState(TypedDict, total=False):
    """What the engine knows of Ollama (``state`` is one of stopped, starting, running, unhealthy,
    backing-off, failed, attached); more keys may come along."""

    state: str
    reason: str
    manage: str
    pid: int | None
    version: str | None
    restarts: int
    uptime_s: float | None
    binary: str | None
    log: str
    managed: bool
    log_tail: list[str]
    install_hint: str
    held: bool  # stopped by the user: it stays stopped until started again


class Health(TypedDict):
    status: Literal["ok", "degraded"]
    paused: bool  # the user paused caching (not a degraded state: their choice)
    version: str
    pid: int
    uptime_s: float
    proxy: ProxyInfo
    store: StoreHealth
    upstream: UpstreamHealth
    ollama: OllamaState
    takeover: Takeover


class Entry(TypedDict):
    """One cached answer's metadata (never its body); times are seconds since the epoch."""

    key: str
    route: str
    model: str
    streamed: bool
    content_type: str
    status: int
    created: float
    duration_s: float
    prompt_tokens: int
    completion_tokens: int
    size: int
    hits: int
    last_hit: float | None


class Cleared(TypedDict):
    removed: int
    model: str | None


class Deleted(TypedDict):
    deleted: str


class Restarted(TypedDict):
    ollama: OllamaState


class Stopping(TypedDict):
    """The engine took a shutdown call: it stops as on SIGTERM, once this answer is sent."""

    stopping: bool


class ThreadsApplied(TypedDict, total=False):
    num_thread: int
    ollama_restart: str
    note: str


class TuneStatus(TypedDict, total=False):
    """A background measurement: ``state`` idle, running, done or failed, with its progress, result
    (as ``ollacache tune --json``), what was applied, or the error."""

    state: Literal["idle", "running", "done", "failed"]
    model: str | None
    progress: dict[str, Any] | None
    result: dict[str, Any]
    applied: ThreadsApplied
    error: str


class SettingRow(TypedDict):
    """One setting as ``GET /-/settings`` shows it. ``kind`` is text, number, bytes (a number of bytes,
    ``human`` beside it), duration (seconds, ``human`` beside it), choice (one of ``choices``), switch,
    path, list or table; ``source`` is default, file, environment or flag, and ``set_by`` names the file,
    variable or flag; ``editable`` is false when the environment or a flag sets it; ``effect`` is what a
    change needs: nothing, engine restart or Ollama restart; ``pending`` marks a value written but not in
    force yet."""

    name: str
    section: str
    kind: str
    choices: list[str]
    default: Any
    default_human: str | None
    accepted: str
    help: str
    value: Any
    human: str | None
    source: Literal["default", "file", "environment", "flag"]
    set_by: str | None
    editable: bool
    effect: Literal["nothing", "engine restart", "Ollama restart"]
    env: str | None
    flag: str | None
    pending: bool


class SettingsTable(TypedDict):
    settings: list[SettingRow]
    sections: list[str]
    file: str
    file_error: str | None


class SettingChange(TypedDict):
    """What a change did: ``result`` is applied, needs engine restart, Ollama restarted or needs Ollama
    restart, with a sentence in ``message``."""

    effect: str
    result: str
    message: str


class SettingsUpdated(TypedDict):
    file: str
    changes: dict[str, SettingChange]


class Paused(TypedDict):
    """After a pause or a resume: whether caching is paused now, and whether the call changed that."""

    paused: bool
    changed: bool


class LoadedModel(TypedDict, total=False):
    """A model in Ollama's memory, as ``/api/ps`` lists it; ``expires_at`` is Ollama's ISO 8601 time."""

    name: str
    model: str
    digest: str
    size: int
    size_vram: int
    expires_at: str | None
    context_length: int | None
    details: dict[str, Any] | None


class Unloaded(TypedDict):
    unloaded: str


class OllamaChanged(TypedDict):
    """After a start or a stop: Ollama's state (a stop answers once it has exited)."""

    ollama: OllamaState


class InstalledModel(TypedDict, total=False):
    """A model Ollama has on disk, as ``/api/tags`` lists it, with what Ollacache holds of it: ``entries`` (cached
    answers of this model)."""

    name: str
    digest: str
    size: int
    modified_at: str | None
    family: str | None
    parameter_size: str | None
    quantization: str | None
    entries: int


class OllamaLog(TypedDict):
    """The last lines of the log of the Ollama Ollacache runs (none when it has no log yet)."""

    path: str
    lines: list[str]


class ListedKey(TypedDict):
    """An API key as ``GET /-/keys`` lists it: never the key or its hash."""

    name: str
    created: float
    last_used: float | None  # None: never used (written every few seconds, so a use just now may not show yet)


class NewKey(TypedDict):
    """A key just made: ``key`` is shown this once and kept nowhere but as its hash."""

    name: str
    key: str
    created: float


class KeyRevoked(TypedDict):
    revoked: str
