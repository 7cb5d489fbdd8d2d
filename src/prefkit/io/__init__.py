"""Readers and writers for every common feedback format, with autodetection.

`read(path)` returns a ReadResult (canonical tables + rejects + which reader and why);
`load`/`save` handle canonical Parquet directly.
"""

from __future__ import annotations

from prefkit.io.base import (
    READERS,
    WRITERS,
    InputError,
    OptionError,
    ReadOptions,
    ReadResult,
    Reject,
    StrictError,
    write_rejects,
)
from prefkit.io.canonical import load, save
from prefkit.io.detect import read

__all__ = [
    "READERS",
    "WRITERS",
    "InputError",
    "OptionError",
    "ReadOptions",
    "ReadResult",
    "Reject",
    "StrictError",
    "load",
    "read",
    "save",
    "write_rejects",
]
