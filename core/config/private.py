"""Ollacache's files are the user's alone: files 0600, directories 0700.

Three tools keep them so:

- :func:`write_private` replaces a file atomically (a private temporary file beside it, then
  ``os.replace``), so a crash leaves the old file or the new one, never a mix, and never a moment when
  the file is readable by others. The token, ``config.toml``, ``running.json`` and the saved totals
  are written this way.
- :func:`private_umask` sets the umask to ``077`` while ``serve`` runs, so everything it creates
  through other libraries (the SQLite store and its ``-wal``/``-shm`` files, the entry directories,
  Ollama's log) is private too. Processes it starts (Ollama) get the user's own umask back in the
  child, so Ollama's files (its models) keep the mode the user normally gets.
- :func:`tighten` takes group and other access off a directory that already exists (made by an
  older version, or by hand), when it belongs to the user.

On Windows modes mean little; these are best effort there.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE_UMASK = 0o077
_user_umask: int | None = None  # the umask to give child processes while private_umask is in force
_hook_registered = False


def write_private(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8) atomically, mode 0600, creating its directory 0700.

    The data is flushed to disk before the rename. Raises ``OSError`` when the directory cannot be
    written; no temporary file is left behind then.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = data.encode() if isinstance(data, str) else data
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def tighten(directory: Path) -> bool:
    """Take group and other access off ``directory`` if it exists and is the user's; whether it changed.

    A directory of someone else's, or one that cannot be changed, is left as it is.
    """
    if os.name != "posix":
        return False
    try:
        status = directory.stat()
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or not status.st_mode & 0o077:
            return False
        directory.chmod(stat.S_IMODE(status.st_mode) & ~0o077)
    except OSError:
        return False
    return True


def _restore_in_child() -> None:
    """After a fork, in the child: the user's own umask, so a started Ollama writes files as usual."""
    if _user_umask is not None:
        os.umask(_user_umask)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """While in force, files and directories this process creates are private (umask 077).

    Child processes get the umask that was in force before: it is restored in the child right after
    the fork (uvloop runs Python's at-fork hooks for every process it spawns, and ``subprocess`` does
    when a ``preexec_fn`` is given, as the Ollama supervisor does on Linux).
    """
    global _user_umask, _hook_registered
    if os.name != "posix":
        yield
        return
    if not _hook_registered:
        os.register_at_fork(after_in_child=_restore_in_child)
        _hook_registered = True
    previous = os.umask(PRIVATE_UMASK)
    _user_umask = previous
    try:
        yield
    finally:
        _user_umask = None
        os.umask(previous)
