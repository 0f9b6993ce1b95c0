"""``ollacache warm FILE.jsonl`` as a user runs it: a real subprocess against a running proxy, its output
on a pipe (plain lines) and on a terminal (a progress bar), its summary and its exit codes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, RunningProxy, free_port


def write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def chat(text: str, model: str = "llama3.2") -> dict[str, Any]:
    return {"endpoint": "/api/chat", "body": {"model": model, "messages": [{"role": "user", "content": text}]}}


def warm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", "warm", *args], cwd=ROOT, capture_output=True, text=True)


def test_progress_then_a_summary_and_a_second_run_finds_everything_cached(
    proxy: RunningProxy, fake: FakeOllama, tmp_path: Path
) -> None:
    file = write(tmp_path / "w.jsonl", [chat(f"q{n}") for n in range(5)])
    first = warm(str(file), "--url", proxy.url, "--concurrency", "2")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("warm: ") and "/5 (" in lines[0]
    assert lines[-2] == "warm: 5/5 (5 sent, 0 already cached, 0 failed)"
    assert lines[-1].startswith("warmed 5 requests in ") and lines[-1].endswith(": 5 sent, 0 already cached, 0 failed")
    second = warm(str(file), "--url", proxy.url)
    assert second.returncode == 0
    assert second.stdout.splitlines()[-1].endswith(": 0 sent, 5 already cached, 0 failed")


def test_a_failure_is_listed_by_line_and_the_exit_code_says_so(proxy: RunningProxy, tmp_path: Path) -> None:
    file = tmp_path / "w.jsonl"
    file.write_text(json.dumps(chat("ok")) + "\n\n" + json.dumps(chat("bad", model="missing:7b")) + "\n")
    result = warm(str(file), "--url", proxy.url)
    assert result.returncode == 1
    summary, failure = result.stdout.splitlines()[-2:]
    assert summary.endswith(": 1 sent, 0 already cached, 1 failed")
    assert failure.startswith("  line 3: /api/chat missing:7b: HTTP 404: ")


def test_a_bad_line_is_named_and_nothing_is_sent(proxy: RunningProxy, fake: FakeOllama, tmp_path: Path) -> None:
    file = tmp_path / "w.jsonl"
    file.write_text(json.dumps(chat("fine")) + "\n" + '{"endpoint": "/api/chat", "body": [1]}\n')
    result = warm(str(file), "--url", proxy.url)
    assert result.returncode == 2
    assert (
        result.stderr == f"ollacache: {file} line 2: the body for /api/chat must be a JSON object; nothing was sent\n"
    )
    assert fake.total_calls("/api/chat") == 0
    missing = warm(str(tmp_path / "none.jsonl"), "--url", proxy.url)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_no_proxy_running_is_said_plainly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = warm(str(write(tmp_path / "w.jsonl", [chat("a")])), "--url", url)
    assert result.returncode == 1
    assert result.stderr == f"ollacache: no proxy answers at {url}; start one with `ollacache serve`\n"


def test_on_a_terminal_it_draws_a_progress_bar(proxy: RunningProxy, tmp_path: Path) -> None:
    file = write(tmp_path / "w.jsonl", [chat(f"t{n}") for n in range(3)])
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "warm", str(file), "--url", proxy.url],
        cwd=ROOT,
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child's side closed: everything was read
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait() == 0
    text = output.decode()
    assert "warming" in text and "━" in text and "3/3" in text  # rich's bar, complete
    assert "warmed 3 requests in " in text
