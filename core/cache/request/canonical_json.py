"""The canonical JSON text of a cache key's form: sorted keys, no spaces, UTF-8 (pure).

A large form (an image in base64, a long document) is written in pieces of a bounded size rather than whole,
so that hashing it needs little memory beyond the parsed body; joined, the pieces are the same text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

# A canonical form this large (characters of its strings plus members of its containers) is hashed in
# pieces; smaller ones are encoded whole by the C encoder, which is faster.
LARGE_FORM = 2**20
PIECE = 2**16  # characters of JSON text encoded and hashed at a time in a large form
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(form: Any) -> bytes:
    """Deterministic JSON for a canonical form (or any value in one): sorted keys, no spaces, UTF-8."""
    return _ENCODER.encode(form).encode()


def canonical_pieces(form: Mapping[str, Any], piece: int = PIECE) -> Iterator[bytes]:
    """`canonical_bytes` of ``form`` in pieces of about ``piece`` characters, never whole in memory.

    Joined, the pieces are exactly `canonical_bytes` (JSON escapes each character on its own, so a long
    string is escaped slice by slice); a string that UTF-8 cannot encode (a lone surrogate) raises
    ``UnicodeEncodeError`` as there.
    """
    pending: list[str] = []
    chars = 0
    for text in _json_text(form, piece):
        pending.append(text)
        chars += len(text)
        if chars >= piece:
            yield "".join(pending).encode()
            pending.clear()
            chars = 0
    if pending:
        yield "".join(pending).encode()


def _json_text(value: Any, piece: int) -> Iterator[str]:
    """The JSON text of ``value`` as `_ENCODER` writes it, in parts of at most a few ``piece`` characters.

    Containers are walked here and everything else is written by `_ENCODER`; runs of scalars in a list
    are written by it in one call each. Object keys are text, as in any form made from JSON.
    """
    if isinstance(value, str):
        if len(value) <= piece:
            yield _ENCODER.encode(value)
            return
        yield '"'
        for start in range(0, len(value), piece):
            yield _ENCODER.encode(value[start : start + piece])[1:-1]
        yield '"'
    elif isinstance(value, dict):
        yield "{"
        for index, (key, member) in enumerate(sorted(value.items())):
            yield ("," if index else "") + _ENCODER.encode(key) + ":"
            yield from _json_text(member, piece)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        run, chars = 0, 0  # the scalars value[run:index] are not written yet
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, tuple)) or (isinstance(item, str) and len(item) > piece):
                if run < index:
                    yield ("," if run else "") + _ENCODER.encode(value[run:index])[1:-1]
                yield "," if index else ""
                yield from _json_text(item, piece)
                run, chars = index + 1, 0
                continue
            chars += len(item) if isinstance(item, str) else 8
            if chars >= piece:
                yield ("," if run else "") + _ENCODER.encode(value[run : index + 1])[1:-1]
                run, chars = index + 1, 0
        if run < len(value):
            yield ("," if run else "") + _ENCODER.encode(value[run:])[1:-1]
        yield "]"
    else:
        yield _ENCODER.encode(value)
