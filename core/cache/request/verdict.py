"""Whether a recorded answer may be stored, and the tokens it cost (the judges of each API return one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """Whether a recorded answer may be stored, why not, and the tokens it cost."""

    storable: bool
    reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


def count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
