"""Canonical Parquet: the on-disk form of every canonical table (schema version in metadata)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.io.base import InputError, ReadOptions, ReadResult, parquet_batches, register_reader
from prefkit.schema import (
    META_KIND_KEY,
    META_VERSION_KEY,
    SCHEMA_VERSION,
    Kind,
    SchemaError,
    conform,
    kind_of,
    schema_for,
    validate,
    with_metadata,
)


def save(table: pa.Table, path: str | Path, kind: Kind | str | None = None) -> Path:
    """Validate and write a canonical table as Parquet (zstd), schema version in the metadata."""
    k = Kind(kind) if kind is not None else kind_of(table)
    table = conform(table, k)
    validate(table, k)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(with_metadata(table, k), p, **parquet_options(k))
    return p


_UNIQUE = frozenset({"id", "prompt_id", "rationale", "correction"})


@cache
def parquet_options(kind: Kind) -> dict[str, Any]:
    """Writer settings of canonical Parquet: zstd; dictionary encoding and min/max statistics
    only for columns whose values repeat (roles, sources, outcomes, models, numbers, ...).
    Ids and free text are (nearly) unique: a dictionary for them is built and dropped again in
    every row group, and their min/max say nothing."""
    paths = [p for f in schema_for(kind) for p in leaf_paths(f.name, f.type)]
    repeat = [p for p in paths if p.split(".")[0] not in _UNIQUE and not p.endswith(".content")]
    return {"compression": "zstd", "use_dictionary": repeat, "write_statistics": repeat}


def leaf_paths(name: str, t: pa.DataType) -> list[str]:
    """Parquet column paths of an Arrow field (compliant nested names: `list.element`,
    `key_value.key`/`.value`)."""
    if pa.types.is_map(t):
        return leaf_paths(f"{name}.key_value.key", t.key_type) + leaf_paths(
            f"{name}.key_value.value", t.item_type
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return leaf_paths(f"{name}.list.element", t.value_type)
    if pa.types.is_struct(t):
        return [p for f in t for p in leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


def load(path: str | Path, kind: Kind | str | None = None) -> pa.Table:
    """Read a canonical Parquet file (checks the schema version and kind)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(p, f"not a readable Parquet file ({e})") from e
    md = table.schema.metadata or {}
    version = md.get(META_VERSION_KEY)
    if version is not None and version.decode() != SCHEMA_VERSION:
        raise InputError(
            p, f"canonical schema version {version.decode()} is not supported ({SCHEMA_VERSION})"
        )
    try:
        k = Kind(kind) if kind is not None else kind_of(table)
        table = conform(table, k)
        validate(table, k)
    except SchemaError as e:
        raise InputError(p, e.reason, line=e.row, field=e.column) from e
    return table


def is_canonical(path: Path) -> bool:
    if path.suffix != ".parquet":
        return False
    try:
        md = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    return META_KIND_KEY in md


def canonical_files(path: Path, kind: Kind) -> list[Path] | None:
    """The canonical Parquet files of `kind` that `path` names — one file, or a folder or glob
    whose data files all are — for stages that read them batch by batch (`prefkit.engine`);
    None when `path` is anything else (then it is read with `read`)."""
    from prefkit.io.detect import dataset_files

    try:
        files = [f for f, _ in (dataset_files(path) or [])] or [path]
    except InputError:
        return None
    for f in files:
        if not f.is_file() or not is_canonical(f):
            return None
        md = pq.read_schema(f).metadata or {}
        if md.get(META_KIND_KEY, b"").decode() != kind.value:
            return None
    return files


class CanonicalReader:
    name = "canonical"
    description = "prefkit canonical Parquet (any kind; schema version in the file metadata)"

    def sniff(self, path: Path, sample: list[Mapping[str, Any]] | None) -> str | None:
        if is_canonical(path):
            return "Parquet file with prefkit schema metadata"
        return None

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        table = load(path, options.kind)
        k = kind_of(table)
        return ReadResult({k: table}, reader=self.name, rows_in=table.num_rows)


register_reader(CanonicalReader())


def single_canonical(path: Path) -> Kind | None:
    """The kind of `path` when it is one canonical Parquet file of this schema version (read
    batch by batch by `iter_canonical`); None for anything else (read it with `read`)."""
    if not path.is_file() or not is_canonical(path):
        return None
    md = pq.read_schema(path).metadata or {}
    version = md.get(META_VERSION_KEY)
    if version is not None and version.decode() != SCHEMA_VERSION:
        return None  # `load` says why
    try:
        return Kind(md[META_KIND_KEY].decode())
    except ValueError:
        return None


def iter_canonical(path: Path, kind: Kind, batch_rows: int = 1 << 14) -> Iterator[pa.Table]:
    """The rows of one canonical Parquet file, conformed and validated batch by batch (memory:
    one batch). A row that breaks the data model raises the same `InputError` as `load`, its
    row number counted from the start of the file."""
    offset = 0
    try:
        batches = parquet_batches(path, batch_rows)
        for b in batches:
            t = pa.Table.from_batches([b])
            try:
                t = conform(t, kind)
                validate(t, kind)
            except SchemaError as e:
                row = None if e.row is None else offset + e.row
                raise InputError(path, e.reason, line=row, field=e.column) from e
            offset += t.num_rows
            yield t
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(path, f"not a readable Parquet file ({e})") from e


def canonical_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return int(pq.ParquetFile(path).metadata.num_rows)
