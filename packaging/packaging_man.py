"""The manual page ``ollacache(1)``, written from the command line's own parser so the two cannot differ."""

from __future__ import annotations

import argparse
import datetime

from core.cli.commands import build_parser

SETTINGS = (
    "Settings come from config.toml in the configuration directory, then OLLACACHE_* environment "
    "variables, then flags; ollacache serve --help lists each with its variable."
)


def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no line opening with a dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Each subcommand: its name, help and options (flags joined, help)."""
    found = []
    for action in parser._actions:  # argparse keeps the subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                options = [
                    (", ".join(option.option_strings) or option.metavar or option.dest, option.help or "")
                    for option in sub._actions
                    if not isinstance(option, argparse._HelpAction)
                ]
                found.append((name, helps.get(name, ""), options))
    return found


def man_page(version: str, today: datetime.date | None = None) -> str:
    """The roff source of ``ollacache.1``."""
    parser = build_parser()
    day = (today or datetime.date.today()).isoformat()
    lines = [
        f'.TH OLLACACHE 1 "{day}" "ollacache {version}" "User Commands"',
        ".SH NAME",
        "ollacache \\- " + _roff(parser.description or "").rstrip("."),
        ".SH SYNOPSIS",
        ".B ollacache",
        "[\\fICOMMAND\\fR] [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        _roff(
            "With no command, ollacache starts the tray app where a display exists, else the headless "
            "proxy (serve). Point Ollama or OpenAI-compatible clients at the proxy's address instead of "
            "Ollama's; repeated requests are answered from the cache."
        ),
        ".SH COMMANDS",
    ]
    for name, summary, options in _commands(parser):
        lines += [".TP", f".B {name}", _roff(summary)]
        for flag, text in options:
            lines += [".RS", ".TP", f".B {_roff(flag)}", _roff(text), ".RE"]
    lines += [".SH SETTINGS", _roff(SETTINGS), ".SH SEE ALSO", ".BR ollama (1)", ""]
    return "\n".join(lines)
