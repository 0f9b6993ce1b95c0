"""Every call of the control API declared once: its method and path, whether it always needs the token, whether
it takes a JSON object, and what it does. The routes of :mod:`core.control.api`, the calls of
:mod:`core.control.calls` (both clients) and the README's table of calls (:func:`readme_table`; a test checks
the README holds it) come from this one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One control call. Without ``token`` it is a read: open to local clients while the proxy is bound to
    loopback, the token needed on any other address; ``body`` says it takes a JSON object; ``query`` is the
    query it reads, as the README shows it."""

    name: str
    method: str
    path: str
    token: bool = False
    body: bool = False
    query: str = ""
    doc: str = ""

    def row(self) -> str:
        """Its row in the README's table of calls."""
        return f"| `{self.method} {self.path}{self.query}` | {self.doc} |"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "health",
        "GET",
        "/-/health",
        doc=(
            "proxy, store and upstream status (`ok` or `degraded`, with the reason), `paused`, `offline` (true "
            "under `--offline`; the status stays `ok`) and `builds` (whether model builds are in the keys, the "
            "models known, the last read of the model list and why it failed)"
        ),
    ),
    Endpoint(
        "stats",
        "GET",
        "/-/stats",
        doc=(
            "totals, today's counters (`today`: the local calendar day, kept across restarts that day), hit rate "
            "(hits and shared answers over all cacheable requests), shared answers (`shared`: identical requests "
            "that followed one upstream call) and the upstream calls under way with their followers "
            "(`in_flight`), 1/5/15-minute rates, hit/miss latency p50/p95/p99, time and tokens saved, per model "
            "and route, entries and bytes, CPU % and RSS of the system and the proxy. Savings are also counted "
            "per client in `clients` (requests, hits, misses, time and tokens saved for each tool, named from its"
            " User-Agent: `ollama-python`, `openai-python`, `ollama-cli`, `LangChain`, `curl`, `browser`...), "
            "also in `/-/metrics` with a `client` label, so you see which tool the cache helps most; and per API key "
            "of a shared proxy in `keys` (by the key's name; a `key` label in `/-/metrics`)"
        ),
    ),
    Endpoint(
        "events",
        "GET",
        "/-/events",
        doc=(
            "Server-Sent Events: `stats` (the same as `/-/stats`) once a second (every 5 s once nothing has "
            "happened for 10 s and no request is being answered upstream), one snapshot shared by every "
            "subscriber, and as they happen events named after what happened (see below)"
        ),
    ),
    Endpoint(
        "metrics",
        "GET",
        "/-/metrics",
        doc=("Prometheus text"),
    ),
    Endpoint(
        "entries",
        "GET",
        "/-/entries",
        query="?model=M&limit=N",
        doc=("newest entries with their metadata (no bodies)"),
    ),
    Endpoint(
        "delete_entry",
        "DELETE",
        "/-/entries/{key}",
        token=True,
        doc=("remove one entry, with the other answers of its bucket (`cache.bucket`; token)"),
    ),
    Endpoint(
        "clear",
        "POST",
        "/-/clear",
        token=True,
        body=True,
        doc=(
            'remove all entries, or `{"model": "llama3.2"}`\'s; with `"stale": true` only those of model builds no'
            ' longer installed (`409` where builds are not tracked); with `"older_than": "7d"` (or seconds) only'
            " those stored longer ago (token)"
        ),
    ),
    Endpoint(
        "explain",
        "POST",
        "/-/explain",
        token=True,
        body=True,
        doc=(
            '`{"endpoint", "body", "headers"?}`: canonical form, key, `cached`, and the up to 3 nearest stored '
            "entries of that model and route with the fields that differ (token even on loopback: it shows stored"
            " prompts; `400` says what is wrong)"
        ),
    ),
    Endpoint(
        "warm_start",
        "POST",
        "/-/warm",
        token=True,
        body=True,
        doc=(
            'send `{"requests": [{"endpoint", "body"}...], "concurrency": N}` through the proxy, what is cached '
            "skipped (token; `409` while one runs or caching is paused, `400` naming the bad item)"
        ),
    ),
    Endpoint(
        "warm_status",
        "GET",
        "/-/warm",
        doc=("the warm-up's progress and failures"),
    ),
    Endpoint(
        "hardware",
        "GET",
        "/-/hardware",
        doc=(
            "the detected hardware, the tuning in force (`recommended`, with the `tuning.*` settings you set "
            "named in `from_settings`) and what the hardware alone recommends (`for_this_machine`), as `ollacache"
            " hardware --json`"
        ),
    ),
    Endpoint(
        "restart_ollama",
        "POST",
        "/-/ollama/restart",
        token=True,
        doc=("restart the Ollama that Ollacache started (token; `409` with the reason otherwise)"),
    ),
    Endpoint(
        "tune_start",
        "POST",
        "/-/tune",
        token=True,
        body=True,
        doc=('measure thread counts in the background (token; `{"model", "runs", "apply"}`)'),
    ),
    Endpoint(
        "tune_status",
        "GET",
        "/-/tune",
        doc=("the measurement's progress or result"),
    ),
    Endpoint(
        "set_threads",
        "POST",
        "/-/tuning",
        token=True,
        body=True,
        doc=('use `{"num_thread": N}` from now on, restarting a supervised Ollama (token)'),
    ),
    Endpoint(
        "settings",
        "GET",
        "/-/settings",
        doc=(
            "every setting: name, `label`, `help` (a sentence), `level` (`common` or `advanced`), `prompt` (what "
            "to enter), section, kind (and choices), default, what is accepted, current value (bytes and "
            "durations as numbers with a human form), source (default, file, environment, flag), whether it is "
            "editable, what a change needs, and `shown`: the value in force as text and where it comes from (the "
            "default folders in use, the Ollama program found, the tuned values with the detected reason)"
        ),
    ),
    Endpoint(
        "update_settings",
        "PUT",
        "/-/settings",
        token=True,
        body=True,
        doc=(
            'change settings, all or none (token; `{"cache.ttl": "7d", "tuning.num_ctx": 4096}`, `null` = back to'
            " the default): `400` with every bad field said as what to enter (a path must be absolute, a folder "
            "one that can be created and written), `409` for one set by the environment or a flag; written to "
            "`config.toml` keeping its comments; says per setting what happened. `?dry_run=1`: the same checks, "
            "nothing written (each result `valid`)"
        ),
    ),
    Endpoint(
        "pause",
        "POST",
        "/-/pause",
        token=True,
        doc=(
            "pass every request through as `X-Cache: BYPASS` (nothing looked up, nothing stored) until resumed; "
            "`paused` on `/-/health` (whose status stays `ok`: the user's choice) and `/-/stats`; lasts until the"
            " engine stops (token)"
        ),
    ),
    Endpoint(
        "resume",
        "POST",
        "/-/resume",
        token=True,
        doc=("cache again after a pause (token)"),
    ),
    Endpoint(
        "ollama_models",
        "GET",
        "/-/ollama/models",
        doc=(
            "the models Ollama has in memory, from its `/api/ps` (`name`, `size`, `size_vram`, `expires_at`, "
            "`digest`, ...), each with `runner`: the resident memory of its runner process (`rss_bytes`, `pids`, "
            "`models`: the model alone when its runner was told apart by its model file, else every model whose "
            "runners' total it is), null where none is found (an Ollama elsewhere, or another user's); `502` when "
            "it cannot be asked"
        ),
    ),
    Endpoint(
        "shutdown",
        "POST",
        "/-/shutdown",
        token=True,
        doc=(
            'stop the engine as SIGTERM does, once the answer `{"stopping": true}` is sent: an Ollama it started '
            "is stopped, totals saved, `running.json` removed (token). The app stops the engine it started this "
            "way on every platform (on Windows a signal is `TerminateProcess`, which no process can catch), and "
            "sends SIGTERM only when the call is not answered"
        ),
    ),
    Endpoint(
        "installed_models",
        "GET",
        "/-/ollama/installed",
        doc=(
            "the models Ollama has installed, from its `/api/tags` (`name`, `digest`, `size`, `modified_at`, "
            "`family`, `parameter_size`, `quantization`) with `entries`: the cached answers of each (one query on"
            " the disk store's model index)"
        ),
    ),
    Endpoint(
        "unload",
        "POST",
        "/-/ollama/unload",
        token=True,
        body=True,
        doc=('unload `{"model": "llama3.2"}` now (token; a model Ollama does not know is a `404` with its message)'),
    ),
    Endpoint(
        "stop_ollama",
        "POST",
        "/-/ollama/stop",
        token=True,
        doc=(
            "stop the Ollama that Ollacache runs and keep it stopped (no restart after a backoff, none by "
            '`/-/ollama/restart`; health says "stopped by the user"), answering once it has exited (token; `409` '
            "with the reason for an Ollama started elsewhere or `ollama.manage = never`)"
        ),
    ),
    Endpoint(
        "start_ollama",
        "POST",
        "/-/ollama/start",
        token=True,
        doc=(
            "start the Ollama that Ollacache runs again, looking for the program and the address anew (so it is "
            'also "detect again": an Ollama installed since is started, one started elsewhere attached) (token; '
            "`409` with the reason: `ollama.manage = never`, still no binary, one already running)"
        ),
    ),
    Endpoint(
        "ollama_log",
        "GET",
        "/-/ollama/log",
        query="?lines=N",
        doc=(
            'the last N (1 to 10000, default 100) lines of the log of the Ollama Ollacache runs, as `{"path", '
            '"lines"}` (none when there is no log yet)'
        ),
    ),
    Endpoint(
        "keys",
        "GET",
        "/-/keys",
        token=True,
        doc=(
            "the install's API keys, oldest first: each key's `name`, when it was made (`created`) and last used "
            "(`last_used`, null if never; written every few seconds), never the key or its hash (token)"
        ),
    ),
    Endpoint(
        "add_key",
        "POST",
        "/-/keys",
        token=True,
        body=True,
        doc=(
            'make a key named `{"name": "alice-laptop"}` (1 to 64 letters, digits, `.`, `@`, `_`, `-`), usable at '
            'once, sharing on or not: `201` with `{"name", "key", "created"}`, the only time the key is shown '
            "(token; `400` for a bad or taken name)"
        ),
    ),
    Endpoint(
        "revoke_key",
        "DELETE",
        "/-/keys/{name}",
        token=True,
        doc=("revoke the key named `name`: a running proxy refuses it within seconds (token; `404` for no such key)"),
    ),
)
BY_NAME: dict[str, Endpoint] = {endpoint.name: endpoint for endpoint in ENDPOINTS}


def readme_table() -> str:
    """The README's table of calls, one row per call."""
    return "\n".join(["| call | what it does |", "|---|---|", *(endpoint.row() for endpoint in ENDPOINTS)])
