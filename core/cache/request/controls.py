"""Per-request cache controls: what a client asks of the cache in its ``Cache-Control`` header (pure).

The directives a client may send, as HTTP caches read them on a request:

- ``no-cache``: do not answer from the cache; ask the upstream and store its answer in place of the old
  one (``X-Cache: REFRESH``);
- ``no-store``: neither look up nor store (``X-Cache: BYPASS``);
- ``max-age=N``: only an entry stored less than N seconds ago may answer;
- ``only-if-cached``: answer from the cache or not at all (a miss is a 504, and the upstream is never
  called).

Beside it, ``X-Cache-TTL: N`` gives the entry this request stores a lifetime of N seconds (instead of the
``cache.ttl`` setting); to keep nothing, a client sends ``Cache-Control: no-store``. And
``X-Cache-Replay: paced`` has a hit replayed at the pace the answer was recorded at (for interfaces
that show typing), ``instant`` (the default) sends it at once.
``X-Cache-Namespace: NAME`` partitions the cache: the same request in two namespaces has two entries
(`parse_namespace`; no header is the default namespace, whose keys are those of a request without it).

Directive names are case-insensitive and comma-separated. Directives that only concern responses or
other caches (``max-stale``, ``min-fresh``, ``no-transform``, extensions) are accepted and left alone,
as HTTP asks of a cache that does not implement them. A ``max-age`` without a whole number of seconds,
or a directive given a value it takes none of, is refused: :class:`ControlsError` names the header and
what it accepts, for a 400.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCEPTED = "no-cache, no-store, max-age=SECONDS (a whole number) or only-if-cached, comma-separated"
TTL_ACCEPTED = "a whole number of seconds, at least 1 (to keep nothing, send Cache-Control: no-store)"
REPLAY_ACCEPTED = "paced (at the recorded pace) or instant (at once, the default)"
_FLAGS = ("no-cache", "no-store", "only-if-cached")
NAMESPACE_ACCEPTED = "1 to 64 characters among letters, digits, '.', '_' and '-'"
_NAMESPACE_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class ControlsError(ValueError):
    """A control header could not be read; ``header`` names it, the message says what it accepts."""

    def __init__(self, header: str, message: str) -> None:
        super().__init__(f"ollacache: bad {header} header: {message}")
        self.header = header


@dataclass(frozen=True, slots=True)
class Controls:
    """What one request asks of the cache."""

    no_cache: bool = False
    no_store: bool = False
    max_age_s: int | None = None
    only_if_cached: bool = False
    ttl_s: int | None = None  # the stored entry's lifetime, when the client gave one
    paced: bool = False  # a hit is replayed at the recorded pace

    @property
    def looks_up(self) -> bool:
        """Whether a stored entry could answer at all (no-cache and no-store never read the store)."""
        return not (self.no_cache or self.no_store)


NONE = Controls()


def parse_controls(cache_control: bytes | None, ttl: bytes | None, replay: bytes | None = None) -> Controls:
    """The controls of a request's ``Cache-Control``, ``X-Cache-TTL`` and ``X-Cache-Replay`` values
    (``None``: absent).

    Raises :class:`ControlsError` for a value it cannot read.
    """
    controls = parse_cache_control(cache_control)
    if ttl is None and replay is None:
        return controls
    ttl_s: int | None = None
    if ttl is not None:
        seconds = ttl.strip()
        if not seconds.isdigit() or int(seconds) < 1:
            raise ControlsError("X-Cache-TTL", f"it takes {TTL_ACCEPTED} (got {ttl.decode('latin-1')!r})")
        ttl_s = int(seconds)
    paced = False
    if replay is not None:
        pace = replay.strip().lower()
        if pace not in (b"paced", b"instant"):
            raise ControlsError("X-Cache-Replay", f"it takes {REPLAY_ACCEPTED} (got {replay.decode('latin-1')!r})")
        paced = pace == b"paced"
    return Controls(controls.no_cache, controls.no_store, controls.max_age_s, controls.only_if_cached, ttl_s, paced)


def parse_cache_control(value: bytes | None) -> Controls:
    """The controls in a request's ``Cache-Control`` value (``None``: the header is absent).

    Raises :class:`ControlsError` for a value it cannot read.
    """
    if not value:
        return NONE
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise ControlsError("Cache-Control", f"it is not ASCII; it accepts {ACCEPTED}") from None
    flags: set[str] = set()
    max_age: int | None = None
    for part in text.split(","):
        name, equals, argument = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name == "max-age":
            seconds = argument.strip().strip('"')
            if not equals or not seconds.isdigit():
                raise ControlsError(
                    "Cache-Control",
                    f"max-age takes a whole number of seconds, as in max-age=3600 "
                    f"(got {part.strip()!r}); it accepts {ACCEPTED}",
                )
            max_age = int(seconds) if max_age is None else min(max_age, int(seconds))
        elif name in _FLAGS:
            if equals:
                raise ControlsError(
                    "Cache-Control", f"{name} takes no value (got {part.strip()!r}); it accepts {ACCEPTED}"
                )
            flags.add(name)
    return Controls("no-cache" in flags, "no-store" in flags, max_age, "only-if-cached" in flags)


def parse_namespace(value: bytes | None) -> str | None:
    """The cache namespace a request's ``X-Cache-Namespace`` value names (``None``: the header is absent).

    Raises :class:`ControlsError` for a value outside :data:`NAMESPACE_ACCEPTED`.
    """
    if value is None:
        return None
    name = value.strip()
    if not 1 <= len(name) <= 64 or not _NAMESPACE_CHARS.issuperset(name):
        shown = value.decode("latin-1")
        raise ControlsError("X-Cache-Namespace", f"it takes {NAMESPACE_ACCEPTED} (got {shown!r})")
    return name.decode("ascii")
