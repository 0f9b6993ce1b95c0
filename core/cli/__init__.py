"""The `ollacache` command line: argument parsing and dispatch (`commands`), and the text each command prints
(`stats_text`, `hardware_text`, `tune_text`), plus `doctor` and `tune`. It reaches a running engine only through the
control client."""

from core.cli.commands import main

__all__ = ["main"]
