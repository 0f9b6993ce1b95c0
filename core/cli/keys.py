"""``ollacache keys``: the API keys that let other computers use a shared proxy (``proxy.share``).

``keys add NAME`` makes a key and prints it once, as the last word of its last line (so a script can take it
with ``| tail -n1 | awk '{print $NF}'``); only its hash is kept. ``keys list`` shows each key's name, when it was
made and last used; ``keys revoke NAME`` removes it, and a running proxy refuses it within seconds. The keys
live in the config directory, so no engine needs to run.
"""

from __future__ import annotations

import sys
import time

from core.access.keyring import KeyRefused, KeyRing
from core.config.settings import Settings


def run_keys(settings: Settings, action: str, name: str | None) -> int:
    """Carry out ``action`` (add, list, revoke); the exit code."""
    ring = KeyRing(settings.config_dir)
    try:
        if action == "add":
            assert name is not None
            secret = ring.add(name)
            print(f"A key for {name}. It is shown once: copy it now. Clients send it as Authorization: Bearer <key>.")
            sharing = "" if settings["proxy.share"] else " (sharing is off: turn it on with --share or proxy.share)"
            print(f"Other computers use it while Ollacache is shared{sharing}.")
            print(f"key: {secret}")
            return 0
        if action == "revoke":
            assert name is not None
            ring.revoke(name)
            print(f"The key {name} is revoked; a running proxy refuses it within seconds.")
            return 0
    except KeyRefused as error:
        print(f"ollacache: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"ollacache: the keys in {ring.path} cannot be written: {error}", file=sys.stderr)
        return 1
    keys = ring.keys()
    if not keys:
        print("No API keys. Make one with: ollacache keys add NAME")
        return 0
    width = max(len(key.name) for key in keys)
    print(f"{'name':<{width}}  made              last used")
    for key in keys:
        used = _when(key.last_used) if key.last_used else "never"
        print(f"{key.name:<{width}}  {_when(key.created)}  {used}")
    return 0


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))
