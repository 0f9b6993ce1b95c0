"""What a Windows user does first with the Windows build, done under Wine and checked from Linux: the console
executable in a terminal, ``serve`` reached from outside Wine, and the installer's install and uninstall.

Each check returns what it saw, for the report, or raises :class:`CheckFailed` saying what went wrong.
"""

from __future__ import annotations

import queue
import shutil
import threading
from pathlib import Path

import httpx
from packaging_pe import WINDOWS_EXECUTABLES, subsystem_problems
from packaging_wine import Wine
from windows_msi import msi_table

from core import __version__
from core.cli.selftest import REQUEST, read_lines, serving_url
from core.cli.selftest_upstream import ANSWER, SelftestUpstream
from core.control import token as tokens
from core.control.client import ControlClient
from core.control.running import RUNTIME_FILE

RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
# the engine alone, as a user's terminal starts it: no Ollama to supervise here, no port taken over
ENGINE_ONLY = {"OLLACACHE_MANAGE_OLLAMA": "never", "OLLACACHE_PORT_TAKEOVER": "false"}


class CheckFailed(Exception):
    """A smoke check failed; the message says what was seen."""


def data_folder(wine: Wine) -> Path:
    """Where Ollacache keeps its settings, cache and logs on Windows: ``%LOCALAPPDATA%\\ollacache``."""
    return wine.local_app_data / "ollacache"


def console(wine: Wine, folder: Path) -> str:
    """``ollacache.exe --version`` prints the version, and each executable is linked for its subsystem."""
    if problems := subsystem_problems(folder, WINDOWS_EXECUTABLES):
        raise CheckFailed("; ".join(problems))
    done = wine.run([folder / "ollacache.exe", "--version"], timeout=120)
    if done.returncode != 0 or done.stdout.strip() != f"ollacache {__version__}":
        raise CheckFailed(f"ollacache.exe --version exited {done.returncode} printing {done.stdout!r} {done.stderr!r}")
    return f"ollacache.exe --version printed {done.stdout.strip()!r}; ollacache.exe console, OllacacheApp.exe windowed"


def serve(wine: Wine, folder: Path) -> str:
    """``ollacache.exe serve`` in front of an upstream on Linux: ``/-/health`` and a MISS then a HIT from outside
    Wine, a clean stop by the shutdown call, ``running.json`` removed, one data folder level."""
    data = data_folder(wine)
    shutil.rmtree(data, ignore_errors=True)
    with SelftestUpstream() as upstream:
        process = wine.popen(
            [folder / "ollacache.exe", "serve", "--host", "127.0.0.1", "--port", "0", "--upstream", upstream.url],
            env=ENGINE_ONLY,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        seen: list[str] = []
        try:
            url = serving_url(process, lines, seen)
            with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
                health = client.get("/-/health")
                if health.status_code != 200:
                    raise CheckFailed(f"/-/health answered {health.status_code}: {health.text[:200]}")
                answers = [client.post("/api/chat", json=REQUEST) for _ in range(2)]
            caches = [answer.headers.get("x-cache") for answer in answers]
            contents = [answer.json().get("message", {}).get("content") for answer in answers]
            if caches != ["MISS", "HIT"] or contents != [ANSWER, ANSWER] or upstream.chats != 1:
                raise CheckFailed(f"two chats gave {caches} {contents}, the upstream answered {upstream.chats}")
            running = (data / RUNTIME_FILE).is_file()
            with ControlClient(url, tokens.read(data)) as control:
                control.shutdown()
            code = process.wait(60)
        except Exception as error:  # noqa: BLE001 - any failure is the check's, with the engine's output
            process.kill()
            raise CheckFailed(f"{error}; the engine said: {' | '.join(seen[-10:])}") from error
        finally:
            reader.join(60)
    if code != 0:
        raise CheckFailed(f"the engine exited {code} after the shutdown call")
    if not running or (data / RUNTIME_FILE).exists():
        raise CheckFailed(f"running.json was {'left behind' if running else 'never written'} in {data}")
    if (data / "ollacache").exists() or not (data / "Cache").is_dir():
        raise CheckFailed(f"the data folder is not {data} with Cache inside: {sorted(p.name for p in data.iterdir())}")
    return (
        f"serve on {url}: /-/health 200, MISS then HIT (the upstream answered once), stopped by the shutdown "
        f"call with exit 0, running.json removed, data in %LOCALAPPDATA%\\ollacache"
    )


def run_value(wine: Wine) -> str | None:
    """The start-at-login Run value ``Ollacache``, or None."""
    done = wine.run(["reg", "query", RUN_KEY, "/v", "Ollacache"], timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("Ollacache")]
    return lines[0].split("REG_SZ", 1)[-1].strip() if done.returncode == 0 and lines else None


def product_code(msi: Path) -> str:
    """The installer's ProductCode (what its Start-menu uninstall entry gives ``msiexec /x``)."""
    return next(row["Value"] for row in msi_table(msi, "Property") if row["Property"] == "ProductCode")


def installer(wine: Wine, msi: Path) -> str:
    """The MSI installed silently with start at login (replacing what an earlier run installed), the installed
    app's selftest, the Start-menu entries and the registration; then uninstalled by its ProductCode, leaving no
    app, entry or Run value."""
    target = wine.local_app_data / "Programs" / "Ollacache"
    menu = wine.local_app_data.parent / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    entries = [menu / "Ollacache.lnk", menu / "Uninstall Ollacache.lnk"]
    code = product_code(msi)
    done = wine.run(["msiexec", "/i", msi, "/qn", "STARTATLOGIN=1"], timeout=600)
    if done.returncode != 0:
        raise CheckFailed(f"msiexec /i exited {done.returncode}: {done.stdout}{done.stderr}")
    missing = [str(p) for p in [target / "ollacache.exe", target / "OllacacheApp.exe", *entries] if not p.is_file()]
    if missing:
        raise CheckFailed(f"after the install these are missing: {', '.join(missing)}")
    registered = wine.run(
        ["reg", "query", rf"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\{code}"], timeout=60
    )
    login = run_value(wine)
    if registered.returncode != 0 or not login or "OllacacheApp.exe" not in login:
        raise CheckFailed(f"installed apps: {registered.stdout.strip()!r}; Run value: {login!r}")
    selftest = wine.run([target / "ollacache.exe", "selftest"], timeout=300)
    if selftest.returncode != 0 or "selftest passed" not in selftest.stdout:
        raise CheckFailed(f"the installed selftest exited {selftest.returncode}: {selftest.stdout}{selftest.stderr}")
    done = wine.run(["msiexec", "/x", code, "/qn"], timeout=600)
    if done.returncode != 0:
        raise CheckFailed(f"msiexec /x exited {done.returncode}: {done.stdout}{done.stderr}")
    left = [str(p) for p in [target, *entries] if p.exists()]
    if left or (login := run_value(wine)):
        raise CheckFailed(f"after the uninstall these are left: {', '.join(left)} {login or ''}")
    return (
        f"installed to %LOCALAPPDATA%\\Programs\\Ollacache with Start-menu entries, registered, start at login "
        f"written; its selftest passed; uninstalled ({code}) with nothing left, the Run value removed"
    )
