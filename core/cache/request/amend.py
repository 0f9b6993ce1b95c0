"""The changes the proxy makes to a body it forwards: one member of one of its objects set (pure).

Only two exist, each documented where it is made: the tuned ``options.num_thread`` (opt-in, see
:mod:`core.http.inject`) and ``stream_options.include_usage`` on the OpenAI streams the cache records (see
:mod:`core.cache.request.usage`). A body that is not a JSON object, or whose object there is not one, is sent
as it came.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def amended(body: bytes, section: str, name: str, value: Any, keeps: Callable[[Any], bool]) -> bytes:
    """``body`` with ``section.name`` set to ``value``, unless the client's own value ``keeps`` (called with it)
    says it stays; ``body`` itself when nothing changes."""
    try:
        request = json.loads(body)
    except ValueError:
        return body
    if not isinstance(request, dict):
        return body
    members = request.get(section)
    if members is None:
        members = request[section] = {}
    if not isinstance(members, dict) or (name in members and keeps(members[name])):
        return body
    members[name] = value
    return json.dumps(request, ensure_ascii=False).encode()
