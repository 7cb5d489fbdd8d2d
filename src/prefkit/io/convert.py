"""`convert`: any supported file to canonical Parquet or a trainer format, in one call.

Canonical Parquet from a reader that can stream (HH-RLHF JSON lines, vectorised path) is
written row group by row group from a writer thread while later blocks are still being parsed,
so parsing and zstd compression share the cores and the whole table is never in memory; the
file holds the same rows as `save(read(src).table, out)`. Everything else is read whole, then
written (`read` + `writers.write`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefkit.io.base import READERS, Batch, NotFast, ReadOptions, Reject
from prefkit.schema import Kind, SchemaError, conform, kind_of, validate

ROW_GROUP_ROWS = 1 << 17  # rows per row group when streaming


@dataclass
class Converted:
    """What `convert` did: rows read by kind (empty when nothing was valid, and then no file
    was written), rows written (what the writer reports), rejects, which reader and why,
    records read, whether it streamed."""

    rows: dict[Kind, int]
    written: int = 0
    rejects: list[Reject] = field(default_factory=list)
    reader: str = ""
    why: str = ""
    rows_in: int = 0
    streamed: bool = False
    notes: dict[str, int] = field(default_factory=dict)


def convert(
    src: str | Path,
    out: str | Path,
    fmt: str | None = None,
    to: str | None = None,
    options: ReadOptions | None = None,
    **write_kw: Any,
) -> Converted:
    """Read `src` (reader `fmt`, else autodetected) and write it to `out` in format `to`
    (default from the extension). Writes nothing when no row is valid."""
    from prefkit.io.detect import dataset_files, pick, read
    from prefkit.io.writers import guess_format, write

    p, o = Path(src), Path(out)
    opts = options or ReadOptions()
    target = to or guess_format(o)
    if dataset_files(p) is not None:  # a folder or glob of files: read as one, then write
        result = read(p, fmt, opts)
        name, why = result.reader, result.why
        stream = None
    else:
        name, why = pick(p, fmt, opts)
        stream = getattr(READERS[name], "stream", None)
        result = None
    if target == "canonical" and stream is not None:
        batches = stream(p, opts)
        if batches is not None:
            try:
                rows, rejects, rows_in = stream_canonical(batches, o)
            except NotFast:
                pass  # read per row below
            else:
                n = sum(rows.values())
                return Converted(rows, n, rejects, name, why, rows_in, streamed=True)
    if result is None:
        result = READERS[name].read(p, opts)
        result.reader, result.why = name, why
    counts = {k: t.num_rows for k, t in result.tables.items()}
    if sum(counts.values()) == 0:
        return Converted({}, 0, result.rejects, name, why, result.rows_in, notes=result.notes)
    written = write(result, o, target, **write_kw)
    return Converted(counts, written, result.rejects, name, why, result.rows_in, notes=result.notes)


def stream_canonical(
    batches: Iterator[Batch], out: Path
) -> tuple[dict[Kind, int], list[Reject], int]:
    """Write canonical tables as they come (validated, zstd, schema metadata, like `save`) to
    `out`, through a partial file that replaces `out` only at the end. Returns rows by kind,
    rejects, records read. Exceptions from `batches` (e.g. `NotFast`) leave no file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    sink = _Sink(partial)
    rejects: list[Reject] = []
    rows_in = 0
    held: list[pa.Table] = []
    n_held = 0
    pending: deque[Future[None]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            for table, rej, n in batches:
                rejects.extend(rej)
                rows_in += n
                if table.num_rows:
                    held.append(table)
                    n_held += table.num_rows
                if n_held >= ROW_GROUP_ROWS:
                    pending.append(pool.submit(sink.write, held))
                    held, n_held = [], 0
                    while len(pending) > 1:
                        pending.popleft().result()
            if held:
                pending.append(pool.submit(sink.write, held))
            while pending:
                pending.popleft().result()
        sink.close()
    except BaseException:
        sink.close()
        partial.unlink(missing_ok=True)
        raise
    if sink.rows == 0:
        partial.unlink(missing_ok=True)
        return {}, rejects, rows_in
    partial.replace(out)
    assert sink.kind is not None
    return {sink.kind: sink.rows}, rejects, rows_in


class _Sink:
    """One Parquet file written row group by row group (from one thread at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        self.kind: Kind | None = None
        self.rows = 0

    def write(self, tables: list[pa.Table]) -> None:
        import pyarrow.parquet as pq

        from prefkit.io.canonical import parquet_options

        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        kind = kind_of(table) if self.kind is None else self.kind
        table = conform(table, kind)
        try:
            validate(table, kind)
        except SchemaError as e:
            row = None if e.row is None else e.row + self.rows
            raise SchemaError(row, e.column, e.reason) from e
        if self.writer is None:
            self.kind = kind
            options = parquet_options(kind)
            self.writer = pq.ParquetWriter(self.path, table.schema, **options)
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
