"""``ollacache selftest``: a throwaway proxy in front of the built-in upstream, one chat twice, MISS then HIT."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.cli import selftest

ROOT = Path(__file__).resolve().parent.parent


def test_selftest_passes_and_leaves_the_users_directories_alone(private_dirs: Path) -> None:
    config = private_dirs / "config"
    config.mkdir()
    (config / "config.toml").write_text("[proxy]\nport = 'not a port'\n")  # the user's settings are not read
    result = subprocess.run([sys.executable, "-m", "core", "selftest"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("request 1: MISS") for line in lines)
    assert any(line.startswith("request 2: HIT") for line in lines)
    assert lines[-1] == "selftest passed"
    assert not (private_dirs / "cache").exists()
    assert sorted(p.name for p in config.iterdir()) == ["config.toml"]


def _run() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = selftest.run_selftest(out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_proxy_that_cannot_start_fails_with_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = [sys.executable, "-c", "import sys; print('cannot bind: address in use'); sys.exit(3)"]
    monkeypatch.setattr(selftest, "engine_command", lambda upstream: broken)
    code, out, err = _run()
    assert code == 1
    assert "FAILED: the proxy exited with status 3 before serving" in err
    assert "cannot bind: address in use" in err
    assert "selftest passed" not in out


def test_a_missing_executable_fails_saying_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(selftest, "engine_command", lambda upstream: [str(tmp_path / "no-such-ollacache"), "serve"])
    code, _, err = _run()
    assert code == 1 and "FAILED: the proxy could not be started" in err


def test_a_second_answer_that_is_not_a_hit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    post = httpx.Client.post
    calls: list[str] = []

    def second_refuses_the_cache(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
        calls.append(url)
        if len(calls) == 2:  # the fault: the cache does not answer the second time
            kwargs["headers"] = {"Cache-Control": "no-cache"}
        return post(client, url, **kwargs)

    monkeypatch.setattr(httpx.Client, "post", second_refuses_the_cache)
    code, out, err = _run()
    assert code == 1
    assert "request 1: MISS" in out
    assert "FAILED: request 2 was" in err and "expected HIT" in err
