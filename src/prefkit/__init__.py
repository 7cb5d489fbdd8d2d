"""prefkit: one engine for human-feedback and preference data.

Small public surface; heavy stage modules load lazily (``prefkit.rank``, ``prefkit.audit`` ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefkit.schema import Kind, Outcome, SchemaError, prompt_id, validate

if TYPE_CHECKING:
    import pyarrow as pa

__version__ = "0.1.0"

__all__ = ["Kind", "Outcome", "SchemaError", "__version__", "load", "prompt_id", "save", "validate"]


def load(path: str | Path, kind: str | None = None) -> pa.Table:
    """Read a canonical Parquet file (see prefkit.io.load)."""
    from prefkit.io import load as _load

    return _load(path, kind)


def save(table: pa.Table, path: str | Path, kind: str | None = None) -> Path:
    """Validate and write a canonical table (see prefkit.io.save)."""
    from prefkit.io import save as _save

    return _save(table, path, kind)
