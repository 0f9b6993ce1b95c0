"""The resident memory of Ollama's runners, per loaded model: what the model, its KV cache and llama.cpp's
prompt cache (:mod:`core.tuning.prompt_cache`) hold in RAM, which ``/api/ps`` does not show.

Ollama starts one runner process per loaded model (llama.cpp's ``llama-server --model <file>``, or
``ollama runner --model <file>``), the file being a blob of its models folder named ``sha256-<digest>``; its
``/api/ps`` gives no process ids. So a runner is told apart by the model file on its command line, matched
to the files the ``FROM`` lines of each loaded model's Modelfile name (``/api/show``). Runners that cannot be
told apart (a command line that cannot be read, one file shared by two models) are shown as their total, for
every model they may belong to, and said to be so (`Resident.models`).

:func:`model_file`, :func:`model_files` and :func:`attribute` are pure; :func:`read_runners` reads the
processes with psutil.
"""

from __future__ import annotations

import ntpath
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

MODEL_FLAGS = ("--model", "-m")  # how llama-server and Ollama's own runner are given the model file, in order


@dataclass(frozen=True)
class Runner:
    """One runner process: ``model`` is the file name of the model it runs (``sha256-...``), None when its
    command line cannot be read."""

    pid: int
    rss_bytes: int
    model: str | None


@dataclass(frozen=True)
class Resident:
    """The resident memory of the runners of ``models``: one model's own runner when ``models`` holds it alone,
    else the total of runners that could not be told apart, shared by every model named."""

    rss_bytes: int
    pids: tuple[int, ...]
    models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rss_bytes": self.rss_bytes, "pids": list(self.pids), "models": list(self.models)}


def _file_name(path: str) -> str:
    """The last part of a path written on any platform (Ollama on Windows writes ``C:\\...\\sha256-...``)."""
    return ntpath.basename(posixpath.basename(path.strip().strip("\"'")))


def model_file(cmdline: Sequence[str]) -> str | None:
    """The file name of the model a runner's command line gives (``--model PATH``, ``--model=PATH``, else
    ``-m PATH``: an interpreter's ``-m`` names a module), or None when it gives none: then the process is no
    runner."""
    for flag in MODEL_FLAGS:
        for index, arg in enumerate(cmdline[1:], start=1):
            if arg == flag and index + 1 < len(cmdline):
                return _file_name(cmdline[index + 1]) or None
            if arg.startswith(f"{flag}="):
                return _file_name(arg.removeprefix(f"{flag}=")) or None
    return None


def model_files(modelfile: str) -> frozenset[str]:
    """The file names the ``FROM`` lines of a Modelfile name (the model, and any projector); comments left out."""
    files = set()
    for line in modelfile.splitlines():
        command, _, argument = line.strip().partition(" ")
        if command.upper() == "FROM" and argument.strip():
            files.add(_file_name(argument))
    return frozenset(files)


def read_runners(ollama_pid: int) -> list[Runner]:
    """The runner processes under ``ollama_pid`` (its descendants with a model file on their command line, and
    those whose command line this user may not read), with their resident memory; none when Ollama is gone."""
    try:
        children = psutil.Process(ollama_pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    runners = []
    for child in children:
        try:
            with child.oneshot():
                rss = child.memory_info().rss
                try:
                    model: str | None = model_file(child.cmdline())
                    if model is None:
                        continue  # a helper, not a runner
                except psutil.AccessDenied:
                    model = None
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, a zombie, or not ours to read
            continue
        runners.append(Runner(child.pid, rss, model))
    return runners


def _resident(runners: Sequence[Runner], models: Sequence[str]) -> Resident:
    return Resident(sum(r.rss_bytes for r in runners), tuple(sorted(r.pid for r in runners)), tuple(models))


def attribute(files: Mapping[str, frozenset[str] | None], runners: Sequence[Runner]) -> dict[str, Resident]:
    """Each loaded model's runner memory.

    Args:
        files: the loaded models by name, each with the file names its Modelfile gives (None: unknown, its
            Modelfile could not be read).
        runners: the runner processes (:func:`read_runners`).

    Returns:
        The models a runner was found for. A runner whose model file only one model has is that model's own;
        the others (no readable command line; a file two models share; a file no model names while some
        model's files are unknown) may belong to several models: each of those without a runner of its own
        gets their total, with every such model in `Resident.models`. A runner that can belong to no loaded
        model (a model still loading) counts for none.
    """
    unknown = [name for name, names in files.items() if names is None]
    own: dict[str, list[Runner]] = {}
    pooled: list[Runner] = []
    candidates: set[str] = set()
    for runner in runners:
        if runner.model is None:
            owners = list(files)
        else:
            owners = [name for name, names in files.items() if names and runner.model in names] or unknown
        if len(owners) == 1:
            own.setdefault(owners[0], []).append(runner)
        elif owners:
            pooled.append(runner)
            candidates.update(owners)
    out = {name: _resident(found, (name,)) for name, found in own.items()}
    sharing = sorted(candidates - own.keys())
    if pooled and sharing:
        total = _resident(pooled, sharing)
        out.update(dict.fromkeys(sharing, total))
    return out
