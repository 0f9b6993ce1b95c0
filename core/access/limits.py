"""A request rate per API key (``proxy.rate_limit``, requests per minute; 0: none), as a token bucket.

Each key may send up to a minute's worth of requests at once, then one more each ``60 / rate`` seconds; a request
beyond that is refused with the seconds until the next one is allowed (``Retry-After``). Pure but for the clock
it is given.
"""

from __future__ import annotations

import math


class RateLimit:
    """Buckets per key name, each holding at most ``per_minute`` requests, refilled evenly over a minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # key name: (requests left, when counted)

    def take(self, name: str, now: float) -> int:
        """Count a request of key ``name`` at ``now`` (seconds): 0 when allowed, else the whole seconds to wait."""
        if self.per_minute <= 0:
            return 0
        rate = self.per_minute / 60.0
        left, then = self._buckets.get(name, (float(self.per_minute), now))
        left = min(float(self.per_minute), left + (now - then) * rate)
        if left >= 1.0:
            self._buckets[name] = (left - 1.0, now)
            return 0
        self._buckets[name] = (left, now)
        return max(1, math.ceil((1.0 - left) / rate))
