"""Writers: canonical Parquet and trainer formats."""

from __future__ import annotations

from pathlib import Path

from prefkit.io.base import InputError, ReadResult
from prefkit.io.canonical import save


def write(result: ReadResult, out: str | Path, to: str | None = None, **kw: object) -> int:
    """Write the result's tables to `out` in format `to` (default from the extension)."""
    p = Path(out)
    fmt = to or ("canonical" if p.suffix == ".parquet" else None)
    if fmt != "canonical":
        raise InputError(p, f"no writer for format {fmt!r}")
    n = 0
    for i, (kind, table) in enumerate(result.tables.items()):
        target = p if i == 0 else p.with_name(f"{p.stem}.{kind.value}{p.suffix}")
        save(table, target, kind)
        n += table.num_rows
    return n
