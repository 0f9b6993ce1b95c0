"""The export format: entries moved between machines as JSON Lines, checked whole before anything is imported.

A file is UTF-8 JSON Lines (gzip-compressed when its name ends in ``.gz``; a compressed file is recognised by
its content on import):

- a header line: ``{"format": "ollacache-export", "version": 1, "created": <unix seconds>, "model": <name or null>}``;
- one line per entry: its metadata as ``GET /-/entries`` shows it (``key``, ``route``, ``model``, ``streamed``,
  ``content_type``, ``status``, ``created``, ``duration_s``, ``prompt_tokens``, ``completion_tokens``,
  ``expires``...), ``offsets_s``, ``chunks`` (the answer's chunks, each base64) and ``request`` (the request
  body it answers, base64);
- a trailer line: ``{"count": <entry lines>, "sha256": <hex SHA-256 of every byte before the trailer line>}``.

:func:`read_export` checks the header's format and version, every entry line, the count and the checksum, and
raises :class:`ExportError` for anything else: an unknown version, a damaged or truncated file. Entries are
read a line at a time, so checking a large file holds one entry in memory at a time.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import MISSING, fields
from pathlib import Path
from typing import IO, Any

from core.cache.entry import Entry

FORMAT = "ollacache-export"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"
_TYPES: dict[str, Any] = {
    "str": str,
    "bool": bool,
    "int": int,
    "float": (int, float),
    "bytes": str,
    "list[bytes]": list,
    "list[float]": list,
}
_FIELDS = {f.name: f for f in fields(Entry)}
_REQUIRED = frozenset(name for name, f in _FIELDS.items() if f.default is MISSING and f.default_factory is MISSING)


class ExportError(ValueError):
    """A file that is not a whole export this version can read: nothing of it may be imported."""


def write_export(entries: Iterable[Entry], file: IO[bytes], model: str | None = None) -> int:
    """Write ``entries`` to ``file`` in the export format; returns how many were written."""
    digest = hashlib.sha256()

    def line(value: dict[str, Any]) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        digest.update(data)
        file.write(data)

    line({"format": FORMAT, "version": VERSION, "created": time.time(), "model": model})
    count = 0
    for entry in entries:
        line(entry_json(entry))
        count += 1
    file.write(json.dumps({"count": count, "sha256": digest.hexdigest()}).encode() + b"\n")
    return count


def entry_json(entry: Entry) -> dict[str, Any]:
    """One entry as its line in the file."""
    data = entry.info()
    data.pop("size", None)
    data["offsets_s"] = entry.offsets_s
    data["chunks"] = [base64.b64encode(chunk).decode() for chunk in entry.chunks]
    data["request"] = base64.b64encode(entry.request).decode()
    return data


def open_export(path: Path) -> IO[bytes]:
    """``path`` opened for reading, decompressed if it is gzip."""
    file = path.open("rb")
    if file.read(2) == GZIP_MAGIC:
        file.close()
        return gzip.open(path, "rb")
    file.seek(0)
    return file


def read_export(path: Path) -> Iterator[Entry]:
    """The entries of the export at ``path``, each checked; the count and checksum are checked at the end, so
    a caller must consume the whole iterator before trusting any of it. Raises :class:`ExportError`."""
    try:
        with open_export(path) as file:
            yield from _entries(file)
    except (OSError, EOFError, gzip.BadGzipFile) as error:  # a truncated or damaged compressed file
        raise ExportError(f"cannot read {path}: {error}") from None


def _entries(file: IO[bytes]) -> Iterator[Entry]:
    digest = hashlib.sha256()
    raw = file.readline()
    if not raw:
        raise ExportError("the file is empty")
    header = _line(raw, 1)
    if header.get("format") != FORMAT:
        raise ExportError("this is not an Ollacache export (its first line names no ollacache-export format)")
    if header.get("version") != VERSION:
        raise ExportError(
            f"this export is format version {header.get('version')!r}; this Ollacache reads "
            f"version {VERSION} (export it again with this version, or upgrade Ollacache)"
        )
    digest.update(raw)
    number, count = 1, 0
    pending: bytes | None = None  # the last line read: an entry, unless it is the trailer
    for raw in file:
        if pending is not None:
            digest.update(pending)
            yield entry_from_json(_line(pending, number), number)
            count += 1
        pending, number = raw, number + 1
    trailer = _line(pending, number) if pending is not None else {}
    if set(trailer) != {"count", "sha256"}:
        raise ExportError("the file is truncated (it ends without its trailer line)")
    if trailer["count"] != count:
        raise ExportError(f"the file is damaged: its trailer counts {trailer['count']!r} entries, it holds {count}")
    if trailer["sha256"] != digest.hexdigest():
        raise ExportError("the file is damaged: its SHA-256 does not match its trailer")


def _line(raw: bytes, number: int) -> dict[str, Any]:
    if not raw.endswith(b"\n"):
        raise ExportError(f"the file is truncated (line {number} is incomplete or missing)")
    try:
        value = json.loads(raw)
    except ValueError:
        raise ExportError(f"line {number} is damaged (not JSON)") from None
    if not isinstance(value, dict):
        raise ExportError(f"line {number} is damaged (not a JSON object)")
    return value


def entry_from_json(value: dict[str, Any], number: int) -> Entry:
    """An entry line as an :class:`Entry`; raises :class:`ExportError` naming the line when it is not one."""
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise ExportError(f"line {number} has a field this version does not know: {unknown[0]!r}")
    missing = sorted(_REQUIRED - set(value))
    if missing:
        raise ExportError(f"line {number} lacks the field {missing[0]!r}")
    for name, item in value.items():
        expected = _TYPES.get(str(_FIELDS[name].type), object)
        if not isinstance(item, expected) or (expected is not bool and isinstance(item, bool)):
            raise ExportError(f"line {number}: {name} has the wrong type")
    try:
        value = {
            **value,
            "chunks": [base64.b64decode(c, validate=True) for c in value["chunks"]],
            "request": base64.b64decode(value.get("request", ""), validate=True),
        }
    except (binascii.Error, TypeError, ValueError):
        raise ExportError(f"line {number}: chunks or request is not base64") from None
    offsets = value.get("offsets_s", [])
    if offsets and (
        len(offsets) != len(value["chunks"])
        or not all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in offsets)
    ):
        raise ExportError(f"line {number}: offsets_s does not match its chunks")
    return Entry(**value)
