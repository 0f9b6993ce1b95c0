"""Windows programs run here under Wine (Debian's 64-bit Wine 8): a prefix of the build's own, the stand-ins for
the two system libraries Wine 8 lacks, and the way a Windows console program must be started under it.

A Windows console program under Wine needs standard input from ``/dev/null`` and its output to a pipe (with a
terminal's handles CPython stops at ``init_sys_streams: Invalid handle``), and none of the Linux variables that
would steer a Windows Python or pip (``PIP_*``, ``PYTHON*``, ``VIRTUAL_ENV``, ``UV_*``).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from packaging_steps import BuildError, run

WINE64 = Path("/usr/lib/wine/wine64")  # Debian's wine64 package puts the 64-bit loader here, not on PATH
WINESERVER = Path("/usr/lib/wine/wineserver")
STANDINS = Path(__file__).resolve().parent / "windows" / "standins"
MINGW = "x86_64-w64-mingw32-"
_LEAKS = ("PIP_", "PYTHON", "VIRTUAL_ENV", "UV_", "LD_LIBRARY_PATH", "QT_", "OLLACACHE_")
# Wine's first start offers to download Mono and Gecko (no network here, and nothing needs them)
_NO_DOWNLOADS = "mscoree,mshtml="


def windows_path(path: Path) -> str:
    """``path`` as a Windows program under Wine sees it (Wine maps ``/`` to drive ``Z:``)."""
    return str(PureWindowsPath("Z:\\", *path.resolve().parts[1:]))


def assemble_standins(target: Path) -> list[Path]:
    """Assemble each stand-in DLL of ``windows/standins`` (``NAME.s`` and ``NAME.def``) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    built = []
    for source in sorted(STANDINS.glob("*.s")):
        name = source.stem
        obj, exports, dll = target / f"{name}.o", target / f"{name}.exp", target / f"{name}.dll"
        run([f"{MINGW}as", source, "-o", obj], echo=False)
        run([f"{MINGW}dlltool", "-d", STANDINS / f"{name}.def", "-e", exports], echo=False)
        run([f"{MINGW}ld", "--dll", "-e", "DllMain", "--subsystem", "windows", "-o", dll, obj, exports], echo=False)
        obj.unlink()
        exports.unlink()
        built.append(dll)
    return built


class WineHung(BuildError):
    """A Windows program that did not end within its time under Wine."""


@dataclass
class Wine:
    """One Wine prefix: created on first use and kept (it takes ~15 s), its processes started and awaited."""

    prefix: Path
    display: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def environment(self, more: Mapping[str, str] | None = None) -> dict[str, str]:
        """This process's environment for a Windows program: the prefix's settings, nothing that leaks."""
        env = {name: value for name, value in os.environ.items() if not name.startswith(_LEAKS)}
        env.pop("DISPLAY", None)
        env.update(WINEPREFIX=str(self.prefix), WINEARCH="win64", WINEDEBUG="-all", WINEDLLOVERRIDES=_NO_DOWNLOADS)
        if self.display:
            env["DISPLAY"] = self.display
        return {**env, **self.extra, **(more or {})}

    @property
    def system32(self) -> Path:
        return self.prefix / "drive_c" / "windows" / "system32"

    @property
    def local_app_data(self) -> Path:
        """The user's ``%LOCALAPPDATA%`` in this prefix."""
        return self.prefix / "drive_c" / "users" / getpass.getuser() / "AppData" / "Local"

    def boot(self) -> None:
        """Create the prefix when it does not exist, and put the stand-in DLLs in its system32."""
        if not (self.system32 / "kernel32.dll").is_file():
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix.mkdir(parents=True)
            print(f"wine: creating the prefix {self.prefix}", flush=True)
            self.run(["wineboot", "--init"], timeout=300)
            self.wait_idle(120)
            if not (self.system32 / "kernel32.dll").is_file():
                raise BuildError(f"wineboot did not create a Windows prefix in {self.prefix}")
        for dll in assemble_standins(self.prefix / "standins"):
            shutil.copy2(dll, self.system32 / dll.name)

    def command(self, argv: Sequence[str | Path]) -> list[str]:
        return [str(WINE64), *(windows_path(part) if isinstance(part, Path) else part for part in argv)]

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a Windows program to its end; its output (stdout and stderr apart) and exit status. A
        :class:`~pathlib.Path` in ``argv`` is given to it as its Windows path."""
        try:
            return subprocess.run(
                self.command(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                env=self.environment(env),
                cwd=cwd,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise WineHung(f"{' '.join(map(str, argv))} did not finish within {timeout:g} s under Wine") from error

    def run_again_if_hung(
        self, argv: Sequence[str | Path], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """:meth:`run`, and once more with every program of the prefix ended first if it hangs: a program under
        Wine has been seen to wait for ever, in a CI run, with nothing of its own left running."""
        try:
            return self.run(argv, timeout=timeout, env=env)
        except WineHung as error:
            print(f"wine: {error}; ending the prefix's programs and running it once more", flush=True)
            self.kill()
            return self.run(argv, timeout=timeout, env=env)

    def popen(
        self, argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None, **kwargs: object
    ) -> subprocess.Popen[str]:
        """Start a Windows program; its output goes to a pipe unless ``stdout`` says otherwise."""
        options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, **kwargs}
        return subprocess.Popen(
            self.command(argv),
            stdin=subprocess.DEVNULL,
            text=True,  # type: ignore[call-overload]
            errors="replace",
            env=self.environment(env),
            **options,
        )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every Windows program of the prefix has ended (the wineserver then exits); whether they did."""
        try:
            subprocess.run([str(WINESERVER), "--wait"], env=self.environment(), timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """End every Windows program of the prefix at once (after a failure, so nothing outlives the build)."""
        subprocess.run([str(WINESERVER), "--kill"], env=self.environment(), check=False)
