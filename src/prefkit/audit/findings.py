"""The one result type every audit check returns (design.md §6.3).

A `Findings` holds the flagged rows of one check as an Arrow table with columns
`row_id`, `check`, `issue`, `severity`, `score` (0..1, higher = more suspicious), `group`
(rows flagged together, e.g. one duplicate cluster; may be null) and `detail`, plus one
summary dict (the check's numbers, JSON-serialisable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

SEVERITIES = ("info", "warning", "error")
DEFAULT_SEVERITIES = ("warning", "error")  # what the default report counts and --fix acts on
SEVERITY_RULE = (
    "error: certainly wrong data (deterministic evidence: a copied row, an empty response, "
    "identical responses, the same annotator answering both ways, an exact leak); "
    "warning: likely wrong (statistical or heuristic evidence: a probably flipped label, a "
    "spammer, a truncated response, mojibake, a near leak); "
    "info: worth a look, not wrong in itself (near duplicates, disputed items)"
)

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("check", pa.string(), nullable=False),
        pa.field("issue", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("group", pa.string()),
        pa.field("detail", pa.string()),
    ]
)


def _empty() -> pa.Table:
    return FINDINGS_SCHEMA.empty_table()


@dataclass(frozen=True)
class Findings:
    """Flagged rows of one check (or several, after `concat`) and the check's summary."""

    check: str
    rows: pa.Table = field(default_factory=_empty)
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rows.num_rows)

    def issues(self) -> dict[str, int]:
        """Flagged-row count per issue."""
        if not self.rows.num_rows:
            return {}
        names, counts = np.unique(
            np.asarray(self.rows.column("issue").to_pylist(), dtype=object).astype(str),
            return_counts=True,
        )
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}

    def row_ids(self, issue: str | None = None) -> set[str]:
        """Ids of the flagged rows (optionally of one issue)."""
        t = self.rows
        if issue is not None:
            import pyarrow.compute as pc

            t = t.filter(pc.equal(t.column("issue"), issue))
        return set(t.column("row_id").to_pylist())


def make_rows(
    check: str,
    issue: str,
    row_ids: pa.Array | Sequence[str] | ArrayLike,
    score: ArrayLike,
    severity: str | Sequence[str],
    detail: Sequence[str | None] | str | pa.Array | None = None,
    group: Sequence[str | None] | ArrayLike | pa.Array | None = None,
) -> pa.Table:
    """Build a findings table for one issue (scalars broadcast; `severity` is one for all
    rows or one per row)."""
    sev_list = [severity] if isinstance(severity, str) else list(severity)
    bad = set(sev_list) - set(SEVERITIES)
    if bad:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {sorted(bad)}")
    ids = (
        row_ids
        if isinstance(row_ids, pa.Array)
        else pa.array([str(x) for x in np.asarray(row_ids, dtype=object).tolist()], pa.string())
    )
    n = len(ids)
    sc = np.broadcast_to(np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0), (n,))
    if detail is None or isinstance(detail, str):
        det = pa.array([detail] * n, pa.string())
    elif isinstance(detail, pa.Array):
        det = detail.cast(pa.string())
    else:
        det = pa.array([None if x is None else str(x) for x in detail], pa.string())
    if group is None:
        grp = pa.nulls(n, pa.string())
    elif isinstance(group, pa.Array):
        grp = group.cast(pa.string())
    else:
        g = np.asarray(group)
        grp = pa.array([None if x is None else str(x) for x in g.tolist()], pa.string())
    return pa.table(
        [
            ids.cast(pa.string()),
            pa.array([check] * n, pa.string()),
            pa.array([issue] * n, pa.string()),
            pa.array(sev_list * n if isinstance(severity, str) else sev_list, pa.string()),
            pa.array(sc),
            grp,
            det,
        ],
        schema=FINDINGS_SCHEMA,
    )


def format_each(template: str, values: ArrayLike) -> pa.Array:
    """`[template.format(v) for v in values]` as an Arrow string array, each distinct value
    formatted once (the same strings; findings on millions of rows then hold no Python
    string per row)."""
    v = np.asarray(values)
    if v.size == 0:
        return pa.array([], pa.string())
    uniq, inv = np.unique(v, return_inverse=True)
    text = pa.array([template.format(x) for x in uniq.tolist()], pa.string())
    return text.take(pa.array(inv.reshape(-1)))


def flag_rows(
    parts: list[pa.Table],
    summary: dict[str, Any],
    count_key: str,
    ids: pa.Array,
    check: str,
    issue: str,
    score: ArrayLike,
    severity: str | Sequence[str],
    detail: Sequence[str | None] | str | pa.Array | None = None,
    group: Sequence[str | None] | ArrayLike | pa.Array | None = None,
) -> None:
    """Count the rows `ids` under `summary[count_key]` and, when there are any, add their
    findings (`make_rows`) to `parts`."""
    summary[count_key] = len(ids)
    if len(ids):
        parts.append(make_rows(check, issue, ids, score, severity, detail, group))


def distinct_rows(rows: pa.Table) -> int:
    """How many different rows a findings table flags."""
    if not rows.num_rows:
        return 0
    import pyarrow.compute as pc

    return int(pc.count_distinct(rows.column("row_id")).as_py())


def flagged_summary(rows: pa.Table, n: int) -> dict[str, Any]:
    """Flagged-row counts: `rows` (errors and warnings, what the default report counts),
    `share` of the input, `by_severity` (rows by their worst severity), `by_issue` (all
    findings) and `by_issue_default` (rows per issue per severity)."""
    out: dict[str, Any] = {
        "rows": 0,
        "share": 0.0,
        "by_severity": {s: 0 for s in SEVERITIES},
        "by_issue": {},
        "by_issue_default": {s: {} for s in SEVERITIES},
    }
    if not rows.num_rows:
        return out
    import pyarrow.compute as pc

    # Arrow kernels on the columns (no Python string per finding: millions at scale)
    inv, ids = _codes(rows.column("row_id"))
    sev = np.asarray(pc.index_in(rows.column("severity"), pa.array(SEVERITIES)), dtype=np.int64)
    icode, issues = _codes(rows.column("issue"))
    names = [str(v) for v in issues.to_pylist()]
    worst = np.full(len(ids), -1, dtype=np.int64)
    np.maximum.at(worst, inv, sev)
    for k, s in enumerate(SEVERITIES):
        out["by_severity"][s] = int((worst == k).sum())
        sel = sev == k
        if sel.any():
            out["by_issue_default"][s] = _counts(icode[sel], names)
    default = int((worst >= SEVERITIES.index("warning")).sum())
    out["by_issue"] = _counts(icode, names)
    out["rows"] = default
    out["share"] = default / n if n else 0.0
    out["all_rows"] = len(ids)
    return out


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[NDArray[np.int64], pa.Array]:
    """Integer code per value of a string column (equal strings share a code) and the
    distinct values (Arrow kernels: no Python object per value)."""
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    enc = pc.dictionary_encode(col)
    return np.asarray(enc.indices, dtype=np.int64), enc.dictionary


def _counts(codes: NDArray[np.int64], names: list[str]) -> dict[str, int]:
    """{name: count} of `codes`, names in sorted order (as `numpy.unique` sorts them)."""
    c = np.bincount(codes, minlength=len(names))
    return {n: int(c[i]) for n, i in sorted((n, i) for i, n in enumerate(names)) if c[i]}


def concat_rows(tables: Sequence[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return _empty()
    # chunked, not combined: the rows stay shared with the checks' own tables (no copy)
    return pa.concat_tables(tables)


def concat(findings: Sequence[Findings], check: str = "all") -> Findings:
    """All rows of several findings in one (summaries keyed by each check's name)."""
    return Findings(
        check,
        concat_rows([f.rows for f in findings]),
        {f.check: f.summary for f in findings},
    )
