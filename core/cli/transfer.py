"""``ollacache export FILE [--model M]`` and ``ollacache import FILE``: entries moved between machines.

Both work on the configured store directly (diskcache is safe to share with a running proxy; Redis is shared by
design), opened by :func:`core.cache.storage.opening.open_store_or_fail`. An export holds the live entries only (an
expired one is left out), written to a temporary file renamed into place, so a failed export leaves no half file
under the name given. An import reads the whole file and checks it (:func:`core.cache.storage.portable.read_export`)
before it writes anything, then adds its entries in batches, replacing entries of the same key; entries that expired
since the export are not imported. Each prints what it did, with counts."""

from __future__ import annotations

import gzip
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.cache.entry import Entry
from core.cache.request.keys import normalize_model
from core.cache.storage.opening import open_store_or_fail
from core.cache.storage.portable import ExportError, read_export, write_export
from core.cache.storage.store import Store, StoreError
from core.config.settings import Settings

EXIT_USAGE = 2
EXIT_FAILED = 1
BATCH = 200  # entries written per transaction on import


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    store = open_store_or_fail(settings)
    try:
        yield store
    finally:
        store.close()


def run_export(settings: Settings, file: str, model: str | None) -> int:
    """Write the live entries (of ``model``, if given) to ``file``; the exit code."""
    if model is not None and not model.strip():
        print("ollacache: --model needs a model name such as llama3.2", file=sys.stderr)
        return EXIT_USAGE
    model = normalize_model(model) if model else None
    target = Path(file)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with _store(settings) as store:
            with partial.open("wb") as raw:
                if target.name.endswith(".gz"):
                    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
                        count = write_export(store.entries(model), zipped, model)
                else:
                    count = write_export(store.entries(model), raw, model)
            partial.replace(target)
    except (StoreError, OSError) as error:
        partial.unlink(missing_ok=True)
        print(f"ollacache: cannot export: {error}", file=sys.stderr)
        return EXIT_FAILED
    what = f"{count} {'entry' if count == 1 else 'entries'}" + (f" of {model}" if model else "")
    print(f"exported {what} from {settings.cache_dir} to {target}")
    return 0


def run_import(settings: Settings, file: str) -> int:
    """Check ``file`` whole, then add its entries to the store; the exit code (nothing imported on a refusal)."""
    path = Path(file)
    try:
        total = sum(1 for _ in read_export(path))  # every line, the count and the checksum, before any write
    except ExportError as error:
        print(f"ollacache: {path} is refused, nothing was imported: {error}", file=sys.stderr)
        return EXIT_USAGE
    imported = replaced = expired = 0
    try:
        with _store(settings) as store:
            batch: list[Entry] = []
            for entry in read_export(path):
                if not entry.live(time.time()):
                    expired += 1
                    continue
                replaced += store.get(entry.key) is not None
                batch.append(entry)
                if len(batch) >= BATCH:
                    store.put_many(batch)
                    imported, batch = imported + len(batch), []
            if batch:
                store.put_many(batch)
                imported += len(batch)
    except ExportError as error:  # changed on disk since it was checked
        print(
            f"ollacache: {path} changed while it was imported ({error}); {imported} entries were imported",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (StoreError, OSError) as error:
        print(
            f"ollacache: cannot import into {settings.cache_dir}: {error}; {imported} of {total} entries were imported",
            file=sys.stderr,
        )
        return EXIT_FAILED
    text = f"imported {imported} {'entry' if imported == 1 else 'entries'} into {settings.cache_dir}"
    details = [f"{replaced} replaced an entry of the same key"] if replaced else []
    if expired:
        details.append(f"{expired} expired since the export, not imported")
    print(text + (f" ({'; '.join(details)})" if details else ""))
    return 0
