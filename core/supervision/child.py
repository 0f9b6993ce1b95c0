"""The ``ollama serve`` that supervision starts, as an operating-system process.

It runs in its own session, so a Ctrl-C meant for Ollacache does not reach it, and stopping it takes its
runner processes too; on Linux it also dies with Ollacache. Its environment is ours as
:func:`core.supervision.environment.ollama_environment` makes it, with ``OLLAMA_HOST`` naming the upstream
(:func:`ollama_host`). Its output goes to a rotating log file and a short tail kept in memory.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from core.frozen import is_frozen
from core.supervision.environment import ollama_environment
from core.supervision.ollama_log import open_log

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
TAIL_LINES = 40  # lines of Ollama's output kept in memory for health and the dashboard


def ollama_host(upstream: str) -> str:
    """``OLLAMA_HOST`` for an upstream URL: ``http://127.0.0.1:11444`` -> ``127.0.0.1:11444``."""
    parts = urlsplit(upstream)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it if Ollacache dies, even by SIGKILL, so no Ollama is orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """The Ollama we start (one at a time), its output logged to ``log_path`` and kept in :attr:`tail`."""

    def __init__(self, log_path: Path) -> None:
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._log = open_log(log_path)
        self.process: asyncio.subprocess.Process | None = None
        self._exited = asyncio.Event()

    async def spawn(self, path: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """Start ``path serve`` with ``env`` added to our environment; raises ``OSError`` when it cannot start."""
        self._exited.clear()
        try:
            process = await asyncio.create_subprocess_exec(
                path,
                "serve",
                env=ollama_environment(os.environ, env, frozen=is_frozen()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=os.name == "posix",
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError:
            self._exited.set()
            raise
        self.process = process
        return process

    async def pump(self, process: asyncio.subprocess.Process) -> None:
        """Copy the output of ``process`` into the log and the tail, until it closes."""
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.tail.append(line)
            self._log.info(line)

    async def reap(self, process: asyncio.subprocess.Process) -> int:
        """Wait for ``process`` to exit; its exit code."""
        code = await process.wait()
        self._exited.set()
        return code

    async def wait_exited(self, timeout_s: float) -> None:
        """Wait until the Ollama we started has exited, at most ``timeout_s`` seconds (``TimeoutError`` then);
        at once when none runs."""
        if self.process is not None and self.process.returncode is None:
            await asyncio.wait_for(self._exited.wait(), timeout_s)

    def send(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the process group of ``pid`` (to the process itself where there are no groups)."""
        try:
            if hasattr(os, "killpg"):
                os.killpg(pid, sig)  # its own session: the runners it started go too
            elif self.process is not None and self.process.pid == pid:
                # Windows: no process groups to signal; terminate() and kill() both end the process
                self.process.terminate() if sig == signal.SIGTERM else self.process.kill()
        except ProcessLookupError:
            pass
