"""Export collected votes: canonical Parquet, canonical JSONL, or TRL preference JSONL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.schema import Kind, kind_of
from prefkit.serve.store import trl_rows

FORMATS = ("parquet", "jsonl", "trl")


class ExportError(ValueError):
    """An export that cannot be written (e.g. TRL pairs from a ranking campaign)."""


def export_bytes(table: pa.Table, fmt: str) -> tuple[bytes, str, str]:
    """(content, media type, file extension) of the canonical `table` in `fmt`."""
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue(), "application/vnd.apache.parquet", "parquet"
    if fmt == "jsonl":
        lines = []
        for r in table.to_pylist():
            r["meta"] = dict(r["meta"] or [])
            lines.append(json.dumps(r, ensure_ascii=False))
        return "".join(line + "\n" for line in lines).encode(), "application/x-ndjson", "jsonl"
    if fmt == "trl":
        if kind_of(table) is not Kind.COMPARISONS:
            raise ExportError(
                "a ranking campaign has no TRL export: export parquet or jsonl and build pairs "
                "with `prefkit pairs`"
            )
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in trl_rows(table))
        return text.encode(), "application/x-ndjson", "trl.jsonl"
    raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")


def export_file(db_url: str, campaign_id: int, out: Path, fmt: str | None = None) -> int:
    """Write a campaign's votes to `out` (format from `fmt` or the extension); returns rows.
    Nothing is written when the campaign cannot be exported."""
    from sqlalchemy.orm import Session

    from prefkit.serve.models import open_engine
    from prefkit.serve.store import export_table

    fmt = fmt or ("parquet" if out.suffix == ".parquet" else "jsonl")
    engine = open_engine(db_url)
    try:
        with Session(engine) as s:
            table = export_table(s, campaign_id)
    finally:
        engine.dispose()
    data, _, _ = export_bytes(table, fmt)
    out.write_bytes(data)
    return int(table.num_rows) if fmt != "trl" else len(trl_rows(table))
