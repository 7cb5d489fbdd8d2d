"""Writers: canonical Parquet, TRL preference / unpaired (JSONL or Parquet, standard or
conversational), HF `datasets` (save_to_disk), CSV and JSON lines of canonical rows.

`a`/`b` never become chosen/rejected with a tie or both_bad in sight: the TRL writers refuse
such tables and point to `prefkit pairs`, which does it with a stated policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import InputError, ReadResult
from prefkit.io.canonical import save
from prefkit.schema import Kind, conform, validate

FORMATS: dict[str, str] = {
    "canonical": "canonical Parquet (every kind; default for .parquet)",
    "trl": "TRL preference prompt/chosen/rejected (.jsonl or .parquet; comparisons a/b only)",
    "trl-unpaired": "TRL unpaired / KTO prompt/completion/label (binary, or comparisons a/b)",
    "hf": "HF datasets folder (save_to_disk) with canonical columns",
    "csv": "CSV of canonical columns (messages, lists and meta as JSON)",
    "jsonl": "JSON lines of canonical rows",
}
JSON_COLUMNS = ("prompt", "response_a", "response_b", "response", "responses", "models", "ranks")


def guess_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "canonical"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if path.is_dir() or not path.suffix:
        return "hf"
    raise InputError(path, f"cannot tell the output format from the name; use --to ({_names()})")


def _names() -> str:
    return ", ".join(FORMATS)


def write(result: ReadResult, out: str | Path, to: str | None = None, **kw: Any) -> int:
    """Write the result's tables to `out` in format `to` (default from the extension).

    A second kind (e.g. FineGrainedRLHF critiques next to its rankings) goes to
    `<stem>.<kind><suffix>` beside `out`. Returns the number of rows written.
    """
    p = Path(out)
    fmt = to or guess_format(p)
    if fmt not in WRITERS:
        raise InputError(p, f"no writer for format {fmt!r}; known: {_names()}")
    fn = WRITERS[fmt]
    if fmt.startswith("trl"):
        return fn(result.tables, p, **kw)
    n = 0
    for i, (kind, table) in enumerate(result.tables.items()):
        target = p if i == 0 else _sibling(p, kind)
        n += fn({kind: table}, target, **kw)
    return n


def _sibling(p: Path, kind: Kind) -> Path:
    if p.suffix:
        return p.with_name(f"{p.stem}.{kind.value}{p.suffix}")
    return p.with_name(f"{p.name}.{kind.value}")


# ---------------------------------------------------------------------------------------
# canonical


def write_canonical(tables: dict[Kind, pa.Table], out: Path, **_: Any) -> int:
    ((kind, table),) = tables.items()
    save(table, out, kind)
    return int(table.num_rows)


def _json_table(table: pa.Table) -> pa.Table:
    """Nested columns as JSON strings (CSV); nulls stay null."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        t = col.type
        if pa.types.is_list(t) or pa.types.is_map(t) or pa.types.is_struct(t):
            vals = col.to_pylist()
            if pa.types.is_map(t):
                vals = [None if v is None else dict(v) for v in vals]
            col = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in vals],
                pa.string(),
            )
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_csv(tables: dict[Kind, pa.Table], out: Path, **_: Any) -> int:
    import pyarrow.csv as pcsv

    ((kind, table),) = tables.items()
    table = conform(table, kind)
    validate(table, kind)
    flat = _json_table(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(flat, out, pcsv.WriteOptions(quoting_style="all_valid"))
    return int(table.num_rows)


def write_jsonl(tables: dict[Kind, pa.Table], out: Path, **_: Any) -> int:
    ((kind, table),) = tables.items()
    table = conform(table, kind)
    validate(table, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for batch in table.to_batches(max_chunksize=8192):
            for row in batch.to_pylist():
                if row.get("meta") is not None:
                    row["meta"] = dict(row["meta"])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return int(table.num_rows)


def hf_table(table: pa.Table) -> Any:
    """A canonical table as `datasets` holds it (an `InMemoryTable`): `meta` becomes
    list<struct<key, value>>, since `datasets` has no map type (readers turn it back)."""
    from datasets.table import InMemoryTable

    from prefkit.schema import kind_of

    kind = kind_of(table)
    table = conform(table, kind)
    validate(table, kind)
    meta = table.column("meta").combine_chunks()
    entries = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.string())]))
    values = pa.StructArray.from_arrays([meta.keys, meta.items], ["key", "value"])
    meta_list = pa.ListArray.from_arrays(meta.offsets, values, mask=meta.is_null()).cast(entries)
    table = table.set_column(table.column_names.index("meta"), "meta", meta_list)
    return InMemoryTable(table.replace_schema_metadata(None))


def write_hf(tables: dict[Kind, pa.Table], out: Path, **_: Any) -> int:
    """A `datasets` folder (save_to_disk) with canonical columns (see `hf_table`)."""
    from datasets import Dataset

    ((kind, table),) = tables.items()
    t = hf_table(conform(table, kind))
    Dataset(t).save_to_disk(str(out))
    return int(t.num_rows)


# ---------------------------------------------------------------------------------------
# TRL


def _is_plain(msgs: list[dict[str, str]] | None, role: str) -> bool:
    return msgs is None or (len(msgs) == 1 and msgs[0]["role"] == role)


def _text(msgs: list[dict[str, str]] | None) -> str:
    return "" if not msgs else msgs[0]["content"]


def _check_ab(table: pa.Table, path: Path) -> None:
    outcomes = table.column("outcome")
    bad = int(pc.sum(pc.invert(pc.is_in(outcomes, pa.array(["a", "b"])))).as_py() or 0)
    if bad:
        counts = {
            c["values"]: c["counts"]
            for c in pc.value_counts(outcomes).to_pylist()
            if c["values"] not in ("a", "b")
        }
        detail = ", ".join(f"{v} {k}" for k, v in counts.items())
        raise InputError(
            path,
            f"{bad} comparison(s) are not a/b ({detail}); convert never turns ties or both_bad "
            "into chosen/rejected. Run `prefkit pairs IN OUT --to trl --ties drop|half|keep` "
            "to build training pairs with a stated policy",
        )


def _write_records(rows: list[dict[str, Any]], out: Path, columns: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(
            pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns}), out
        )
        return
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _wants_conversational(rows: list[dict[str, Any]], names: tuple[str, ...]) -> bool:
    for r in rows:
        if not _is_plain(r["prompt"], "user"):
            return True
        for n in names:
            if not _is_plain(r[n], "assistant"):
                return True
    return False


def write_trl(
    tables: dict[Kind, pa.Table], out: Path, conversational: bool = False, **_: Any
) -> int:
    """TRL preference format, explicit prompt. Standard (strings) unless `conversational` or a
    row needs messages (multi-turn prompt or response), then message lists for every row."""
    table = tables.get(Kind.COMPARISONS)
    if table is None:
        kinds = ", ".join(k.value for k in tables)
        raise InputError(
            out,
            f"TRL preference needs comparisons, got {kinds}; run `prefkit pairs` to build pairs",
        )
    _check_ab(table, out)
    cols = table.select(["prompt", "response_a", "response_b", "outcome"]).to_pylist()
    for r in cols:
        if r["response_a"] is None or r["response_b"] is None:
            raise InputError(out, "comparisons without response text cannot be written for TRL")
    conv = conversational or _wants_conversational(cols, ("response_a", "response_b"))
    rows = []
    for r in cols:
        chosen, rejected = (
            (r["response_a"], r["response_b"])
            if r["outcome"] == "a"
            else (r["response_b"], r["response_a"])
        )
        if conv:
            rows.append({"prompt": r["prompt"] or [], "chosen": chosen, "rejected": rejected})
        else:
            rows.append(
                {"prompt": _text(r["prompt"]), "chosen": _text(chosen), "rejected": _text(rejected)}
            )
    _write_records(rows, out, ["prompt", "chosen", "rejected"])
    return len(rows)


def write_trl_unpaired(
    tables: dict[Kind, pa.Table], out: Path, conversational: bool = False, **_: Any
) -> int:
    """TRL unpaired preference (KTO): prompt/completion/label, from binary feedback, or from
    a/b comparisons (the preferred response labelled true, the other false)."""
    items: list[dict[str, Any]] = []
    if Kind.BINARY in tables:
        for r in tables[Kind.BINARY].select(["prompt", "response", "label"]).to_pylist():
            items.append({"prompt": r["prompt"], "completion": r["response"], "label": r["label"]})
    elif Kind.COMPARISONS in tables:
        t = tables[Kind.COMPARISONS]
        _check_ab(t, out)
        for r in t.select(["prompt", "response_a", "response_b", "outcome"]).to_pylist():
            good, bad = (
                (r["response_a"], r["response_b"])
                if r["outcome"] == "a"
                else (r["response_b"], r["response_a"])
            )
            items.append({"prompt": r["prompt"], "completion": good, "label": True})
            items.append({"prompt": r["prompt"], "completion": bad, "label": False})
    else:
        kinds = ", ".join(k.value for k in tables)
        raise InputError(out, f"TRL unpaired needs binary feedback or comparisons, got {kinds}")
    for it in items:
        if it["completion"] is None:
            raise InputError(out, "rows without response text cannot be written for TRL")
    conv = conversational or _wants_conversational(items, ("completion",))
    rows = []
    for it in items:
        if conv:
            rows.append(
                {"prompt": it["prompt"] or [], "completion": it["completion"], "label": it["label"]}
            )
        else:
            rows.append(
                {
                    "prompt": _text(it["prompt"]),
                    "completion": _text(it["completion"]),
                    "label": it["label"],
                }
            )
    _write_records(rows, out, ["prompt", "completion", "label"])
    return len(rows)


WRITERS: dict[str, Callable[..., int]] = {
    "canonical": write_canonical,
    "trl": write_trl,
    "trl-unpaired": write_trl_unpaired,
    "hf": write_hf,
    "csv": write_csv,
    "jsonl": write_jsonl,
}
