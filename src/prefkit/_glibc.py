"""glibc's allocator controls (`mallopt`, `malloc_trim`) through ctypes: the steps that hold
millions of rows tune how freed memory goes back to the system. Every call does nothing (and
says so) on another C library."""

from __future__ import annotations

import os
from typing import Any

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's `mallopt` parameters


def _libc() -> Any:
    """This process's glibc, or None (another C library, or none reachable)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        import ctypes

        return ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):
        return None


def mallopt(*settings: tuple[int, int]) -> bool:
    """Apply `(parameter, value)` settings in order; True when glibc accepted every one."""
    libc = _libc()
    if libc is None:
        return False
    try:
        return all(libc.mallopt(p, v) for p, v in settings)
    except AttributeError:
        return False


def malloc_trim() -> None:
    """`malloc_trim(0)`: hand the pages of freed blocks back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
