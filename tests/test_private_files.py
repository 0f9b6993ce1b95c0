"""Everything Ollacache writes is the user's alone: files 0600, directories 0700, whatever the umask.

The Ollama it starts keeps the user's own umask, so Ollama's files are as the user normally gets them.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config.file import write_setting
from core.config.private import tighten, write_private
from core.control import running, token
from tests.harness import BOUND_S, ROOT, free_port, proxy_process, wait_for

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

FAKE_OLLAMA = str(ROOT / "tests" / "fakes" / "bin" / "ollama")
USUAL_UMASK = 0o022
CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "options": {"temperature": 0},
}


@pytest.fixture
def usual_umask() -> Iterator[int]:
    """The umask most users have (022), for this process and the ones it starts."""
    previous = os.umask(USUAL_UMASK)
    try:
        yield USUAL_UMASK
    finally:
        os.umask(previous)


def modes_under(*roots: Path) -> dict[str, int]:
    """``{path: permission bits}`` of each root and everything below it."""
    found: dict[str, int] = {}
    for root in roots:
        found[str(root)] = stat.S_IMODE(root.lstat().st_mode)
        for directory, subdirectories, files in os.walk(root):
            for name in subdirectories + files:
                path = Path(directory, name)
                found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def not_private(modes: dict[str, int]) -> dict[str, str]:
    return {path: oct(mode) for path, mode in modes.items() if mode != (0o700 if Path(path).is_dir() else 0o600)}


def umask_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask in /proc/PID/status")


def test_serve_creates_only_private_files_and_tightens_existing_directories(
    private_dirs: Path, usual_umask: int
) -> None:
    config, cache, logs = private_dirs / "config", private_dirs / "cache", private_dirs / "logs"
    config.mkdir(mode=0o755)  # as an older version, or the user, left them
    cache.mkdir(mode=0o755)
    upstream = f"http://127.0.0.1:{free_port()}"
    fake_ollama = {"OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA, "OLLACACHE_TEST_PYTHON": sys.executable}
    with proxy_process(upstream, "--manage-ollama", "auto", env=fake_ollama) as proxy:
        health = lambda: httpx.get(proxy.url + "/-/health", timeout=10).json()["ollama"]  # noqa: E731
        ollama = wait_for(lambda: (state := health())["state"] == "running" and state, "Ollama to run")
        httpx.post(upstream + "/_fake/config", json={"tokens": 4000})  # a body large enough for its own file
        with httpx.Client(base_url=proxy.url, timeout=BOUND_S) as client:
            assert client.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
            wait_for(lambda: client.get("/-/entries").json()["entries"], "the answer to be stored")
            assert client.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
        while_serving = modes_under(config, cache, logs)
        if sys.platform.startswith("linux"):
            assert umask_of(ollama["pid"]) == usual_umask  # Ollama's own files keep the user's mode
    after = modes_under(config, cache, logs)
    assert {Path(path).name for path in while_serving} >= {
        "token",
        "running.json",
        "cache.db",
        "hits.sqlite3",
        "ollama.log",
    }
    assert "stats.json" in {Path(path).name for path in after}
    assert any(path.endswith(".val") for path in while_serving), "the large answer had a file of its own"
    assert not_private(while_serving) == {} and not_private(after) == {}


def test_written_files_replace_the_old_ones_privately_and_atomically(private_dirs: Path, usual_umask: int) -> None:
    config = private_dirs / "config"
    config.mkdir(mode=0o755)
    (config / "config.toml").write_text("# mine\n[proxy]\nport = 11500\n")
    assert stat.S_IMODE((config / "config.toml").stat().st_mode) == 0o644
    write_setting(config, "tuning.num_thread", 6)
    secret = token.load_or_create(config)
    running.write_url(config, "http://127.0.0.1:11500")
    assert (config / "config.toml").read_text().startswith("# mine\n")
    assert token.read(config) == secret and running.read_url(config) == "http://127.0.0.1:11500"
    assert {name: oct(mode) for name, mode in modes_under(config).items() if not Path(name).is_dir()} == {
        str(config / name): oct(0o600) for name in ("config.toml", "token", "running.json")
    }


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "stats.json"
    write_private(path, b"old")

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        write_private(path, b"new")
    assert path.read_bytes() == b"old" and sorted(p.name for p in path.parent.iterdir()) == ["stats.json"]


def test_tighten_takes_group_and_other_access_off_a_directory_of_the_users(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o775)
    assert tighten(shared) is True and stat.S_IMODE(shared.stat().st_mode) == 0o700
    assert tighten(shared) is False  # already private
    assert tighten(tmp_path / "missing") is False
