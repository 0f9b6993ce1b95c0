"""The ``ollacache`` command: ``serve``, ``tray``, ``stats``, ``hardware``, ``tune``, ``doctor``, ``clear``, ``export``,
``import``, ``explain``, ``warm``, ``selftest`` and ``--version``.

Commands that talk to a running engine (``stats``, ``clear``, ``doctor``, ``tune --apply``) do so through
:mod:`core.control.client`, which finds it through ``running.json`` and reads the control token.

Every ``serve`` flag also reads an environment variable (``--port`` -> ``OLLACACHE_PORT``) and the
config file; flags win. An invalid value stops with a message naming the setting, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from core import __version__
from core.cli.stats_text import format_stats
from core.config.settings import SPECS, SettingError, Settings, load
from core.control.client import ControlClient, ControlError
from core.frozen import own_environment, tray_command

EXIT_USAGE = 2
EXIT_UNREACHABLE = 1


def build_parser() -> argparse.ArgumentParser:
    """The ``ollacache`` command line (also read by the packaging's manual page)."""
    parser = argparse.ArgumentParser(prog="ollacache", description="A caching proxy for local Ollama.")
    parser.add_argument("--version", action="version", version=f"ollacache {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the caching proxy until SIGINT or SIGTERM")
    for spec in SPECS:
        if spec.flag and spec.is_switch:
            serve.add_argument(
                spec.flag,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{spec.help} (env {spec.env}=1 or 0)",
            )
        elif spec.flag:
            serve.add_argument(
                spec.flag,
                dest=spec.name,
                help=f"{spec.help} (env {spec.env}; accepted: {spec.accepted})",
                metavar=spec.metavar or spec.flag.strip("-").split("-")[-1].upper(),
            )

    stats = commands.add_parser("stats", help="summarise what a running proxy has done")
    stats.add_argument("--url", help="the proxy's address (default: from the settings)")
    stats.add_argument("--json", action="store_true", help="print the raw /-/stats JSON")

    hardware = commands.add_parser("hardware", help="what this machine has, and the tuning recommended for it")
    hardware.add_argument("--json", action="store_true", help="print JSON (the same as GET /-/hardware)")

    tune = commands.add_parser("tune", help="measure which thread count runs your model fastest here")
    tune.add_argument("--model", help="the model to measure (default: the newest that can generate text)")
    tune.add_argument("--upstream", help="Ollama's address (default: the running proxy's upstream, else the setting)")
    tune.add_argument("--runs", type=int, default=3, help="measured runs per thread count, after one warm-up")
    tune.add_argument("--apply", action="store_true", help="keep the winner as tuning.num_thread and restart Ollama")
    tune.add_argument("--json", action="store_true", help="print only the result as JSON")

    tray = commands.add_parser("tray", help="the tray app, which runs the engine (with no display: serve)")
    tray.add_argument("--hidden", action="store_true", help="start in the tray only, without opening the dashboard")

    commands.add_parser("doctor", help="check the binary, upstream, ports, cache directory and tuning; say what to fix")

    clear = commands.add_parser("clear", help="remove cached entries (all, or one model's)")
    clear.add_argument("--model", help="only this model's entries, e.g. llama3.2")
    clear.add_argument("--url", help="the proxy's address (default: from the settings)")
    clear.add_argument(
        "--cache-dir",
        dest="cache.dir",
        metavar="DIR",
        help="clear this cache directory directly when no proxy is running",
    )
    which = clear.add_mutually_exclusive_group()
    which.add_argument(
        "--stale", action="store_true", help="only entries answered by a model build that is no longer installed"
    )
    which.add_argument(
        "--older-than", metavar="AGE", help='only entries stored longer ago than AGE, such as "7d", "12h" or "90m"'
    )

    export = commands.add_parser("export", help="write the cache's live entries to a file (all, or one model's)")
    export.add_argument("file", metavar="FILE", help="the file to write (gzip-compressed when it ends in .gz)")
    export.add_argument("--model", help="only this model's entries, e.g. llama3.2")
    export.add_argument(
        "--cache-dir", dest="cache.dir", metavar="DIR", help="the cache directory (default: the setting)"
    )

    import_ = commands.add_parser("import", help="add the entries of an exported file to the cache (checked first)")
    import_.add_argument("file", metavar="FILE", help="a file written by ollacache export")
    import_.add_argument(
        "--cache-dir", dest="cache.dir", metavar="DIR", help="the cache directory (default: the setting)"
    )

    explain = commands.add_parser(
        "explain", help="why a request misses: its key, and the stored requests nearest to it"
    )
    explain.add_argument(
        "file",
        metavar="FILE.json",
        help='{"endpoint": "/api/chat", "body": {...}} (optionally "headers"); - reads standard input',
    )
    explain.add_argument("--url", help="the proxy's address (default: the running one)")
    explain.add_argument("--json", action="store_true", help="print the raw /-/explain JSON")
    warm = commands.add_parser(
        "warm", help="send each request of a JSONL file through the running proxy, skipping what is cached"
    )
    warm.add_argument("file", metavar="FILE.jsonl", help='one request a line: {"endpoint": "/api/chat", "body": {...}}')
    warm.add_argument("--url", help="the proxy's address (default: from the settings)")
    warm.add_argument("--concurrency", type=int, default=4, help="requests sent at a time (1 to 64; default 4)")

    keys = commands.add_parser("keys", help="the API keys other computers use while Ollacache is shared")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("add", help="make a key for a person or device; it is printed once").add_argument("name")
    actions.add_parser("list", help="the keys, with when each was made and last used")
    actions.add_parser("revoke", help="remove a key; a running proxy refuses it within seconds").add_argument("name")
    commands.add_parser(
        "selftest",
        help="start a throwaway proxy in front of a built-in upstream and check that "
        "it caches (your settings and cache are not used)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code. Output cut short by the reader (``ollacache stats | head``) ends quietly."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # the recipe of the Python docs (signal module, "Note on SIGPIPE"): point stdout at devnull so the
        # interpreter's own flush at exit does not fail again, and exit 1 as on a write error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "selftest":  # before the settings: the user's own must not make it fail
        from core.cli.selftest import run_selftest

        return run_selftest()
    flags = {spec.name: getattr(args, spec.name, None) for spec in SPECS}
    try:
        settings = load(flags)
    except SettingError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "serve":
        from core.engine.server import serve  # uvicorn is imported only when serving

        return serve(settings)
    if args.command == "tray":
        return _tray(settings, args.hidden)
    if args.command == "stats":
        return _stats(settings, args.url, args.json)
    if args.command == "hardware":
        return _hardware(settings, args.json)
    if args.command == "tune":
        from core.cli.tune import run_tune

        return run_tune(
            settings, model=args.model, upstream=args.upstream, runs=args.runs, apply=args.apply, as_json=args.json
        )
    if args.command == "warm":
        from pathlib import Path

        from core.cli.warm import run_warm

        return run_warm(settings, Path(args.file), url=args.url, concurrency=args.concurrency)
    if args.command == "doctor":
        from core.cli.doctor import check, format_findings

        findings = check(settings)
        print(format_findings(findings))
        return 1 if any(f.verdict == "fail" for f in findings) else 0
    if args.command == "export":
        from core.cli.transfer import run_export

        return run_export(settings, args.file, args.model)
    if args.command == "import":
        from core.cli.transfer import run_import

        return run_import(settings, args.file)
    if args.command == "keys":
        from core.cli.keys import run_keys

        return run_keys(settings, args.action, getattr(args, "name", None))
    if args.command == "explain":
        from core.cli.explain import run_explain

        return run_explain(settings, args.file, args.url, args.json)
    from core.cli.clearing import clear

    return clear(settings, args.url, args.model, stale=args.stale, older_than=args.older_than)


def has_display(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether a GUI can open: always on macOS and Windows; on Linux and the BSDs, with an X or Wayland
    display (or a Qt platform chosen explicitly, such as ``offscreen``)."""
    if platform == "darwin" or platform == "win32":
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _tray(settings: Settings, hidden: bool = False) -> int:
    """Run the tray app (``python -m desktop``, or the frozen executable with no command: a process of its
    own, as the engine never imports the GUI);
    with no display, say so and serve headless instead."""
    if not has_display():
        print(
            "ollacache: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); running the headless "
            "engine as `ollacache serve` instead",
            file=sys.stderr,
            flush=True,
        )
        from core.engine.server import serve

        return serve(settings)
    command, environment = tray_command(hidden), own_environment(os.environ)
    if sys.platform == "win32":
        import subprocess

        return subprocess.call(command, env=environment)
    sys.stdout.flush()
    os.execve(sys.executable, command, environment)  # the app gets the terminal's signals itself


def _stats(settings: Settings, url: str | None, as_json: bool) -> int:
    try:
        with ControlClient.from_settings(settings, url) as client:
            snapshot = client.stats()
    except ControlError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(snapshot) if as_json else format_stats(snapshot, client.url))
    return 0


def _hardware(settings: Settings, as_json: bool) -> int:
    from core.cli.hardware_text import format_report
    from core.tuning.in_force import detect_and_recommend, hardware_json
    from core.tuning.recommend import TuningError

    try:
        hw, recommendation = detect_and_recommend(settings)
    except TuningError as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(hardware_json(hw, recommendation), indent=2) if as_json else format_report(hw, recommendation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
