"""prefkit: one engine for human-feedback and preference data.

Small public surface: ``read`` (any supported file, autodetected), ``load`` / ``save``
(canonical Parquet), ``to_datasets`` (a ``datasets.Dataset``), the schema names. Heavy stage
modules load lazily on first use (``prefkit.rank``, ``prefkit.audit``, ``prefkit.build`` ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefkit.schema import Kind, Outcome, SchemaError, prompt_id, validate

if TYPE_CHECKING:
    import pyarrow as pa

    from prefkit.io.base import ReadResult

__version__ = "0.1.0"

__all__ = [
    "Kind",
    "Outcome",
    "SchemaError",
    "__version__",
    "load",
    "prompt_id",
    "read",
    "save",
    "to_datasets",
    "validate",
]

#: stage subpackages, imported on first attribute access (`prefkit.rank.bt_fit` ...)
STAGES = ("io", "build", "audit", "rank", "reward", "align", "simulate", "serve")


def __getattr__(name: str) -> Any:
    if name in STAGES:
        return importlib.import_module(f"prefkit.{name}")
    raise AttributeError(f"module 'prefkit' has no attribute {name!r}")


def read(
    path: str | Path,
    from_: str | None = None,
    map: Mapping[str, str] | None = None,  # noqa: A002  (the CLI's --map)
    value_map: Mapping[str, Mapping[str, str]] | None = None,
    strict: bool = False,
) -> ReadResult:
    """Read any supported file, folder of shards or glob, as `prefkit convert` does.

    `from_` names the reader (else autodetected), `map` renames columns to canonical fields
    (`{"question": "prompt"}`), `value_map` rewrites raw values (`{"outcome": {"L": "a"}}`).
    Returns a `ReadResult`: `.tables` (canonical tables by kind), `.table` (the main one),
    `.rejects` (file, line, field, reason of every row not read), `.reader`, `.why`."""
    from prefkit.io.base import ReadOptions
    from prefkit.io.detect import read as _read

    opts = ReadOptions(strict=strict, mapping=dict(map or {}), value_maps=dict(value_map or {}))
    return _read(path, from_, opts)


def to_datasets(table: pa.Table) -> Any:
    """A canonical table as a `datasets.Dataset` (`meta` as a list of {key, value}, since
    `datasets` has no map type); needs the `datasets` package."""
    from prefkit.io.writers import hf_table

    try:
        from datasets import Dataset
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("prefkit.to_datasets needs the `datasets` package") from e
    return Dataset(hf_table(table))


def load(path: str | Path, kind: str | None = None) -> pa.Table:
    """Read a canonical Parquet file (see prefkit.io.load)."""
    from prefkit.io import load as _load

    return _load(path, kind)


def save(table: pa.Table, path: str | Path, kind: str | None = None) -> Path:
    """Validate and write a canonical table (see prefkit.io.save)."""
    from prefkit.io import save as _save

    return _save(table, path, kind)
