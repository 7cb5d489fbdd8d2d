"""`inspect`: what is in a canonical table, as one dict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.schema import Kind, Outcome, kind_of, normalize_text


def _distinct(table: pa.Table, name: str) -> int:
    if name not in table.column_names:
        return 0
    col = table.column(name).drop_null()
    return int(pc.count_distinct(col).as_py()) if len(col) else 0


def _text_lengths(col: pa.ChunkedArray) -> np.ndarray:
    """Characters of the concatenated contents of each message list (nulls skipped)."""
    flat = pc.list_flatten(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    if len(flat) == 0:
        return np.zeros(0)
    contents = pc.struct_field(flat, "content")
    lens = pc.utf8_length(pc.fill_null(contents, ""))
    parents = pc.list_parent_indices(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    out = np.bincount(
        np.asarray(parents), weights=np.asarray(lens, dtype=np.float64), minlength=len(col)
    )
    valid = np.asarray(col.is_valid())
    return np.asarray(out[valid])


def _quantiles(x: np.ndarray) -> dict[str, float] | None:
    if x.size == 0:
        return None
    q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 0.95, 1.0])
    return dict(zip(["min", "p25", "p50", "p75", "p95", "max"], map(float, q), strict=True))


def describe(table: pa.Table) -> dict[str, Any]:
    """Kind, rows, outcome counts, distinct prompts/annotators/models/sources/aspects, lengths."""
    kind = kind_of(table)
    out: dict[str, Any] = {"kind": kind.value, "rows": table.num_rows}
    if kind is Kind.COMPARISONS:
        counts = pc.value_counts(table.column("outcome")).to_pylist() if table.num_rows else []
        got = {c["values"]: int(c["counts"]) for c in counts}
        out["outcomes"] = {o.value: got.get(o.value, 0) for o in Outcome}
    else:
        out["outcomes"] = None
    out["prompts"] = _distinct(table, "prompt_id")
    out["annotators"] = _distinct(table, "annotator")
    models: set[str] = set()
    for name in ("model_a", "model_b", "model"):
        if name in table.column_names:
            models.update(x for x in table.column(name).drop_null().unique().to_pylist())
    if "models" in table.column_names:
        for ms in table.column("models").drop_null().to_pylist():
            models.update(m for m in ms if m is not None)
    out["models"] = len(models)
    out["sources"] = sorted(set(table.column("source").drop_null().to_pylist()))
    out["aspects"] = sorted(set(table.column("aspect").drop_null().to_pylist()))
    lengths: dict[str, Any] = {}
    for name in ("prompt", "response_a", "response_b", "response", "correction"):
        if name in table.column_names and pa.types.is_list(table.column(name).type):
            lengths[name] = _quantiles(_text_lengths(table.column(name)))
    out["text_length_chars"] = lengths
    if kind is Kind.COMPARISONS:
        out["identical_responses"] = identical_response_count(table)
    if kind is Kind.RATINGS:
        out["scores"] = score_histogram(table.column("score"))
    if kind is Kind.BINARY:
        labels = table.column("label")
        up = int(pc.sum(labels).as_py() or 0)
        out["labels"] = {"true": up, "false": int(table.num_rows - labels.null_count - up)}
    return out


def score_histogram(col: pa.ChunkedArray, bins: int = 10) -> dict[str, Any]:
    """Counts per score value (at most 20 distinct values), else per bin of equal width:
    `{"values": [...], "counts": [...]}` or `{"edges": [...], "counts": [...]}`."""
    x = np.asarray(col.drop_null().to_numpy(zero_copy_only=False), dtype=np.float64)
    if x.size == 0:
        return {"values": [], "counts": []}
    values, counts = np.unique(x, return_counts=True)
    if len(values) <= 20:
        return {"values": values.tolist(), "counts": counts.tolist()}
    hist, edges = np.histogram(x, bins=bins)
    return {"edges": edges.tolist(), "counts": hist.tolist()}


def identical_response_count(table: pa.Table) -> int:
    """Comparison rows whose two responses have the same normalized text (both present)."""
    a = table.column("response_a").to_pylist()
    b = table.column("response_b").to_pylist()
    n = 0
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            continue
        tx = normalize_text(" ".join(m["content"] or "" for m in x))
        ty = normalize_text(" ".join(m["content"] or "" for m in y))
        n += tx == ty
    return n
