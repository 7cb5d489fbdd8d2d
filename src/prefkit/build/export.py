"""Export built pairs to trainer formats: TRL preference (standard or conversational, with
`margin` and `weight`), TRL unpaired/KTO (prompt, completion, label); Parquet or JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.io.base import InputError
from prefkit.schema import messages_text

EXTENSIONS = (".parquet", ".jsonl")


def is_conversational(table: pa.Table, columns: tuple[str, ...]) -> bool:
    """True when any prompt has several turns or a non-user role, or a response several
    messages: then plain strings would lose structure."""
    for name in columns:
        if name not in table.column_names:
            continue
        want = "user" if name == "prompt" else "assistant"
        for msgs in table.column(name).to_pylist():
            if msgs and (len(msgs) > 1 or msgs[0]["role"] != want):
                return True
    return False


def _text(msgs: Any, prompt: bool) -> str:
    if not msgs:
        return ""
    if prompt and (len(msgs) > 1 or msgs[0]["role"] != "user"):
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in msgs)
    return messages_text(msgs)


def _msgs(msgs: Any) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"] or ""} for m in msgs or []]


def to_trl(pairs: pa.Table, conversational: bool | None = None) -> pa.Table:
    """TRL preference format: prompt, chosen, rejected (+ margin, weight, tie, id, prompt_id).

    Standard (strings) or conversational (message lists); `None` = match the input (messages
    when any prompt is multi-turn or any response is more than one message)."""
    conv = (
        is_conversational(pairs, ("prompt", "chosen", "rejected"))
        if conversational is None
        else conversational
    )
    prompt = pairs.column("prompt").to_pylist()
    chosen = pairs.column("chosen").to_pylist()
    rejected = pairs.column("rejected").to_pylist()
    if conv:
        data: dict[str, Any] = {
            "prompt": [_msgs(p) for p in prompt],
            "chosen": [_msgs(c) for c in chosen],
            "rejected": [_msgs(r) for r in rejected],
        }
    else:
        data = {
            "prompt": [_text(p, True) for p in prompt],
            "chosen": [_text(c, False) for c in chosen],
            "rejected": [_text(r, False) for r in rejected],
        }
    for name in ("margin", "weight", "tie", "id", "prompt_id"):
        data[name] = pairs.column(name)  # typed as in the pairs table, also when all null
    return pa.table(data)


def to_kto(unpaired: pa.Table, conversational: bool | None = None) -> pa.Table:
    """TRL unpaired (KTO) format: prompt, completion, label (+ id, prompt_id)."""
    conv = (
        is_conversational(unpaired, ("prompt", "completion"))
        if conversational is None
        else conversational
    )
    prompt = unpaired.column("prompt").to_pylist()
    completion = unpaired.column("completion").to_pylist()
    data: dict[str, Any] = {
        "prompt": [_msgs(p) if conv else _text(p, True) for p in prompt],
        "completion": [_msgs(c) if conv else _text(c, False) for c in completion],
        "label": unpaired.column("label").to_pylist(),
        "id": unpaired.column("id").to_pylist(),
        "prompt_id": unpaired.column("prompt_id").to_pylist(),
    }
    return pa.table(data)


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write a table as Parquet (`.parquet`) or JSON lines (`.jsonl`)."""
    p = Path(path)
    if p.suffix not in EXTENSIONS:
        raise InputError(p, f"output must end in {' or '.join(EXTENSIONS)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".parquet":
        pq.write_table(table, p, compression="zstd")
        return p
    with p.open("w", encoding="utf-8") as fh:
        _write_jsonl(table, fh)
    return p


def _write_jsonl(table: pa.Table, fh: Any) -> None:
    maps = [f.name for f in table.schema if pa.types.is_map(f.type)]
    for row in table.to_pylist():
        for m in maps:
            if row[m] is not None:
                row[m] = dict(row[m])
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class TableWriter:
    """Batches of one schema to Parquet (row group by row group) or JSON lines, through a
    partial file beside `path` that `close` moves into place (`abort` removes it): memory is
    one batch, and a failed run leaves no half-written output."""

    def __init__(self, path: Path) -> None:
        if path.suffix not in EXTENSIONS:
            raise InputError(path, f"output must end in {' or '.join(EXTENSIONS)}")
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parquet: Any = None
        self.fh: Any = None
        self.rows = 0

    def write(self, batch: pa.Table) -> None:
        self.rows += batch.num_rows
        if self.path.suffix == ".parquet":
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.partial, batch.schema, compression="zstd")
            self.parquet.write_table(batch)
            return
        if self.fh is None:
            self.fh = self.partial.open("w", encoding="utf-8")
        _write_jsonl(batch, self.fh)

    def _finish(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.fh is not None:
            self.fh.close()

    def close(self, empty: pa.Schema) -> Path:
        """Move the output into place (a file with schema `empty` when nothing was written)."""
        self._finish()
        if self.parquet is None and self.fh is None:
            return write_table(empty.empty_table(), self.path)
        self.partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        self._finish()
        self.partial.unlink(missing_ok=True)


def read_build_output(path: str | Path) -> pa.Table | None:
    """A `prefkit pairs` output (pairs table, TRL or KTO export; Parquet or JSON lines) as
    its own table, every column kept; None for any other file."""
    from prefkit.io.readers.trl import KTO_EXPORT, PAIRS_KEYS

    p = Path(path)
    if p.suffix == ".parquet" and p.is_file():
        try:
            names = set(pq.read_schema(p).names)
        except (pa.ArrowInvalid, OSError):
            return None
        if PAIRS_KEYS <= names or names == KTO_EXPORT:
            return pq.read_table(p)
        return None
    if p.suffix != ".jsonl" or not p.is_file():
        return None
    with p.open(encoding="utf-8") as fh:
        first = fh.readline()
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        return None
    if not isinstance(head, dict):
        return None
    names = set(head)
    if not (PAIRS_KEYS <= names or names == KTO_EXPORT):
        return None
    with p.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    from prefkit.build.result import PAIRS_SCHEMA

    if names == set(PAIRS_SCHEMA.names):
        for r in rows:
            if r.get("meta") is not None:
                r["meta"] = list(r["meta"].items())
        return pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)
    return pa.Table.from_pylist(rows)
