"""A guard against a reference-count bug of PySide6 6.12 on Python 3.11: every call of a Qt method that
returns nothing (``QPainter.setPen``, ``QWidget.update``, ``QLabel.setText``, ...) takes one reference from
``None`` without having given it one. After some thousands of calls ``None``'s count reaches zero and the
interpreter aborts with "Fatal Python error: none_dealloc: deallocating None" (a chart redrawn once a
second does so within a minute).

Python 3.12 made ``None`` immortal (PEP 683), so the bug is harmless there. On an interpreter where the
leak shows, `guard_none` gives ``None`` the same property by hand: it raises its count by 2**40, which
no program makes that many calls to use up. It measures first and does nothing where there is no leak.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QPointF

MARGIN = 1 << 40
_guarded = False


def leaks_none() -> bool:
    """True when a void Qt call loses a reference to None (measured over 200 calls)."""
    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(200):
        point.setX(1.0)
    return sys.getrefcount(None) <= before - 100


def guard_none() -> bool:
    """Make None's count unreachable by the leak, once, where the leak shows. True when it did."""
    global _guarded
    if _guarded or sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or not leaks_none():
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += MARGIN
    _guarded = True
    return True
