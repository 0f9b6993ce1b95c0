"""``ollacache export`` and ``ollacache import``: entries moved between two cache directories in the documented
format, then served as hits; a damaged, truncated or unknown-version file is refused and imports nothing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cache.storage.diskstore import DiskStore
from core.cache.storage.portable import ExportError, read_export
from tests.fakes.ollama_server import FakeOllama
from tests.harness import ROOT, proxy_in_thread, wait_for
from tests.test_store import make_entry

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "options": {"temperature": 0},
}
OTHER = {"model": "qwen3:0.6b", "prompt": "why?", "stream": True, "options": {"seed": 1}}


def ollacache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ)
    )


def recorded(upstream: str, cache: Path) -> dict[str, object]:
    """Two answers (two models) recorded through a proxy on ``cache``; the first answer."""
    with proxy_in_thread(upstream, **{"cache.dir": str(cache)}) as online, online.client() as http:
        answer = http.post("/api/chat", json=CHAT)
        http.post("/api/generate", json=OTHER)
        wait_for(lambda: online.stats()["store"]["entries"] == 2, "both entries stored")  # type: ignore[index]
        return answer.json()


def entries_in(cache: Path) -> list[str]:
    store = DiskStore(cache, 10**8)
    try:
        return sorted(e.key for e in store.entries())
    finally:
        store.close()


@pytest.mark.parametrize("name", ["cache.jsonl", "cache.jsonl.gz"])
def test_a_round_trip_between_two_cache_dirs_then_a_hit_on_the_second(
    upstream: tuple[FakeOllama, str], tmp_path: Path, name: str
) -> None:
    fake, url = upstream
    first, second, file = tmp_path / "one", tmp_path / "two", tmp_path / name
    answer = recorded(url, first)
    exported = ollacache("export", str(file), "--cache-dir", str(first))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"exported 2 entries from {first} to {file}"
    assert (file.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    imported = ollacache("import", str(file), "--cache-dir", str(second))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"imported 2 entries into {second}"
    assert entries_in(second) == entries_in(first)
    again = ollacache("import", str(file), "--cache-dir", str(second))
    assert "imported 2 entries" in again.stdout and "2 replaced an entry of the same key" in again.stdout
    assert entries_in(second) == entries_in(first)
    fake.reset()
    with proxy_in_thread(url, **{"cache.dir": str(second)}) as moved, moved.client() as http:
        hit = http.post("/api/chat", json=CHAT)
        assert hit.headers["x-cache"] == "HIT" and hit.json() == answer
        streamed = http.post("/api/generate", json=OTHER)
        assert streamed.headers["x-cache"] == "HIT" and streamed.text.strip().endswith("}")
    assert fake.total_calls("/api/chat") == fake.total_calls("/api/generate") == 0


def test_export_of_one_model_and_the_documented_format(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    first, file = tmp_path / "one", tmp_path / "qwen.jsonl"
    recorded(upstream[1], first)
    result = ollacache("export", str(file), "--model", "Qwen3:0.6B", "--cache-dir", str(first))
    assert result.stdout.strip() == f"exported 1 entry of qwen3:0.6b from {first} to {file}"
    data = file.read_bytes()
    lines = data.splitlines(keepends=True)
    header, entry, trailer = (json.loads(line) for line in lines)
    assert header["format"] == "ollacache-export" and header["version"] == 1 and header["model"] == "qwen3:0.6b"
    assert entry["model"] == "qwen3:0.6b" and entry["route"] == "/api/generate" and entry["streamed"] is True
    assert json.loads(base64.b64decode(entry["request"])) == OTHER
    assert len(entry["chunks"]) == len(entry["offsets_s"])
    assert json.loads(base64.b64decode(entry["chunks"][-1]).splitlines()[-1])["done"] is True
    assert trailer == {"count": 1, "sha256": hashlib.sha256(b"".join(lines[:-1])).hexdigest()}


def test_expired_entries_are_neither_exported_nor_imported(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "one", 10**8)
    store.put(make_entry("live"))
    store.put(make_entry("dies", expires=10**10))
    store.close()
    file = tmp_path / "x.jsonl"
    assert ollacache("export", str(file), "--cache-dir", str(tmp_path / "one")).stdout.startswith("exported 2 ")
    # the same file, one entry past its expiry (rewritten with a correct checksum)
    lines = file.read_bytes().splitlines(keepends=True)
    rows = [json.loads(line) for line in lines[1:-1]]
    for row in rows:
        if row["key"] == "dies":
            row["expires"] = 1.0
    body = lines[0] + b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    file.write_bytes(body + json.dumps({"count": 2, "sha256": hashlib.sha256(body).hexdigest()}).encode() + b"\n")
    result = ollacache("import", str(file), "--cache-dir", str(tmp_path / "two"))
    assert result.stdout.strip() == (
        f"imported 1 entry into {tmp_path / 'two'} (1 expired since the export, not imported)"
    )
    assert entries_in(tmp_path / "two") == ["live"]


def damaged_versions(data: bytes) -> dict[str, tuple[bytes, str]]:
    lines = data.splitlines(keepends=True)
    header = json.loads(lines[0])
    newer = json.dumps({**header, "version": 2}).encode() + b"\n"
    flipped = bytearray(data)
    flipped[len(lines[0]) + 40] ^= 1  # one bit inside the first entry's line
    return {
        "unknown version": (newer + b"".join(lines[1:]), "format version 2"),
        "truncated": (data[: len(data) - len(lines[-1]) - 10], "truncated"),
        "no trailer": (b"".join(lines[:-1]), "truncated"),
        "a bit flipped": (bytes(flipped), "damaged"),
        "a line left out": (lines[0] + lines[2] + lines[3], "damaged"),
        "not an export": (b'{"hello": 1}\n', "not an Ollacache export"),
        "empty": (b"", "empty"),
        "cut gzip": (gzip.compress(data)[:-20], "cannot read"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown version",
        "truncated",
        "no trailer",
        "a bit flipped",
        "a line left out",
        "not an export",
        "empty",
        "cut gzip",
    ],
)
def test_a_damaged_file_is_refused_and_nothing_is_imported(tmp_path: Path, case: str) -> None:
    store = DiskStore(tmp_path / "one", 10**8)
    for n in range(3):
        store.put(make_entry(f"k{n}", request=b'{"model":"llama3.2"}'))
    store.close()
    good = tmp_path / "good.jsonl"
    assert ollacache("export", str(good), "--cache-dir", str(tmp_path / "one")).returncode == 0
    data, message = damaged_versions(good.read_bytes())[case]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(data)
    result = ollacache("import", str(bad), "--cache-dir", str(tmp_path / "two"))
    assert result.returncode == 2 and "nothing was imported" in result.stderr and message in result.stderr
    assert entries_in(tmp_path / "two") == []
    with pytest.raises(ExportError):
        list(read_export(bad))


def test_a_missing_file_and_a_bad_model_name_are_told(tmp_path: Path) -> None:
    result = ollacache("import", str(tmp_path / "nosuch.jsonl"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert ollacache("export", str(tmp_path / "x.jsonl"), "--model", " ").returncode == 2
    result = ollacache("export", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert result.returncode == 1 and "cannot export" in result.stderr
    assert not list(tmp_path.glob("**/.*partial*"))
