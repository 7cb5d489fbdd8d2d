"""`inspect`: what is in a canonical table, as one dict.

`Describer` reads a table batch by batch and keeps only what the summary needs: counts, the
distinct prompt ids and annotators (Arrow arrays of distinct values: they grow with distinct
keys, not with rows), model/source/aspect sets, one int32 length per row and text column (the
quantiles are exact), the scores of ratings (one float per row). `describe(table)` is the same
pass over one table, so a file read whole and one streamed give the same summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.schema import Kind, Outcome, kind_of, normalize_text

LENGTH_COLUMNS = ("prompt", "response_a", "response_b", "response", "correction")


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


class _Distinct:
    """The distinct non-null values of a column seen so far (an Arrow array, merged when the
    pending per-batch uniques outgrow it: memory ~2x the distinct values)."""

    def __init__(self) -> None:
        self.merged: pa.Array | None = None
        self.pending: list[pa.Array] = []
        self.size = 0

    def add(self, col: pa.ChunkedArray) -> None:
        u = pc.unique(col.drop_null())
        u = u.combine_chunks() if isinstance(u, pa.ChunkedArray) else u
        self.pending.append(u)
        self.size += len(u)
        if self.size > 2 * (0 if self.merged is None else len(self.merged)) + (1 << 16):
            self._merge()

    def _merge(self) -> None:
        parts = ([self.merged] if self.merged is not None else []) + self.pending
        if parts:
            self.merged = pc.unique(pa.concat_arrays(parts))
        self.pending = []
        self.size = len(self.merged) if self.merged is not None else 0

    def count(self) -> int:
        self._merge()
        return 0 if self.merged is None else len(self.merged)


class Describer:
    """Accumulates `inspect`'s summary over batches of one canonical kind (`add`), then
    `result()`: the same dict `describe` gives for the whole table."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.rows = 0
        self.outcomes: dict[str, int] = {}
        self.distinct = {"prompt_id": _Distinct(), "annotator": _Distinct()}
        self.models: set[str] = set()
        self.sources: set[str] = set()
        self.aspects: set[str] = set()
        self.lengths: dict[str, list[np.ndarray]] = {}
        self.identical = 0
        self.scores: list[np.ndarray] = []
        self.labels_up = 0
        self.labels_seen = 0

    def add(self, table: pa.Table) -> None:
        names = table.column_names
        self.rows += table.num_rows
        if self.kind is Kind.COMPARISONS and table.num_rows:
            for c in pc.value_counts(table.column("outcome")).to_pylist():
                self.outcomes[c["values"]] = self.outcomes.get(c["values"], 0) + int(c["counts"])
        for name, acc in self.distinct.items():
            if name in names:
                acc.add(table.column(name))
        for name in ("model_a", "model_b", "model"):
            if name in names:
                self.models.update(table.column(name).drop_null().unique().to_pylist())
        if "models" in names:
            for ms in table.column("models").drop_null().to_pylist():
                self.models.update(m for m in ms if m is not None)
        self.sources.update(table.column("source").drop_null().unique().to_pylist())
        self.aspects.update(table.column("aspect").drop_null().unique().to_pylist())
        for name in LENGTH_COLUMNS:
            if name in names and pa.types.is_list(table.column(name).type):
                lens = _text_lengths(table.column(name)).astype(np.int32)
                self.lengths.setdefault(name, []).append(lens)
        if self.kind is Kind.COMPARISONS:
            self.identical += identical_response_count(table)
        if self.kind is Kind.RATINGS:
            col = table.column("score").drop_null()
            self.scores.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64))
        if self.kind is Kind.BINARY:
            labels = table.column("label")
            self.labels_up += int(pc.sum(labels).as_py() or 0)
            self.labels_seen += table.num_rows - labels.null_count

    def result(self) -> dict[str, Any]:
        kind = self.kind
        out: dict[str, Any] = {"kind": kind.value, "rows": self.rows}
        if kind is Kind.COMPARISONS:
            out["outcomes"] = {o.value: self.outcomes.get(o.value, 0) for o in Outcome}
        else:
            out["outcomes"] = None
        out["prompts"] = self.distinct["prompt_id"].count()
        out["annotators"] = self.distinct["annotator"].count()
        out["models"] = len(self.models)
        out["sources"] = sorted(self.sources)
        out["aspects"] = sorted(self.aspects)
        out["text_length_chars"] = {
            name: _quantiles(np.concatenate(parts)) for name, parts in self.lengths.items()
        }
        if kind is Kind.COMPARISONS:
            out["identical_responses"] = self.identical
        if kind is Kind.RATINGS:
            out["scores"] = score_histogram(
                np.concatenate(self.scores) if self.scores else np.zeros(0)
            )
        if kind is Kind.BINARY:
            out["labels"] = {"true": self.labels_up, "false": self.labels_seen - self.labels_up}
        return out


def describe(table: pa.Table) -> dict[str, Any]:
    """Kind, rows, outcome counts, distinct prompts/annotators/models/sources/aspects, lengths."""
    d = Describer(kind_of(table))
    d.add(table)
    return d.result()


def score_histogram(x: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Counts per score value (at most 20 distinct values), else per bin of equal width:
    `{"values": [...], "counts": [...]}` or `{"edges": [...], "counts": [...]}`."""
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
