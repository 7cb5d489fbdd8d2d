"""Export collected votes: canonical Parquet, canonical JSONL, or TRL preference JSONL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.serve.store import trl_rows

FORMATS = ("parquet", "jsonl", "trl")


def export_bytes(table: pa.Table, fmt: str) -> tuple[bytes, str, str]:
    """(content, media type, file extension) of the canonical comparisons `table` in `fmt`."""
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue(), "application/vnd.apache.parquet", "parquet"
    if fmt == "jsonl":
        lines = []
        for r in table.to_pylist():
            r["meta"] = dict(r["meta"] or [])
            lines.append(json.dumps(r, ensure_ascii=False))
        return ("\n".join(lines) + "\n").encode(), "application/x-ndjson", "jsonl"
    if fmt == "trl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in trl_rows(table))
        return text.encode(), "application/x-ndjson", "trl.jsonl"
    raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")


def export_file(db_url: str, campaign_id: int, out: Path, fmt: str | None = None) -> int:
    """Write a campaign's votes to `out` (format from `fmt` or the extension); returns rows."""
    from sqlalchemy.orm import Session

    from prefkit.serve.models import make_engine
    from prefkit.serve.store import export_table

    fmt = fmt or ("parquet" if out.suffix == ".parquet" else "jsonl")
    engine = make_engine(db_url)
    with Session(engine) as s:
        table = export_table(s, campaign_id)
    engine.dispose()
    data, _, _ = export_bytes(table, fmt)
    out.write_bytes(data)
    return int(table.num_rows) if fmt != "trl" else len(trl_rows(table))
