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
from numpy.typing import ArrayLike

SEVERITIES = ("info", "warning", "error")

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
    severity: str,
    detail: Sequence[str | None] | str | None = None,
    group: Sequence[str | None] | ArrayLike | None = None,
) -> pa.Table:
    """Build a findings table for one issue (scalars broadcast)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    ids = (
        row_ids
        if isinstance(row_ids, pa.Array)
        else pa.array([str(x) for x in np.asarray(row_ids, dtype=object).tolist()], pa.string())
    )
    n = len(ids)
    sc = np.broadcast_to(np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0), (n,))
    if detail is None or isinstance(detail, str):
        det = pa.array([detail] * n, pa.string())
    else:
        det = pa.array([None if x is None else str(x) for x in detail], pa.string())
    if group is None:
        grp = pa.nulls(n, pa.string())
    else:
        g = np.asarray(group)
        grp = pa.array([None if x is None else str(x) for x in g.tolist()], pa.string())
    return pa.table(
        [
            ids.cast(pa.string()),
            pa.array([check] * n, pa.string()),
            pa.array([issue] * n, pa.string()),
            pa.array([severity] * n, pa.string()),
            pa.array(sc),
            grp,
            det,
        ],
        schema=FINDINGS_SCHEMA,
    )


def concat_rows(tables: Sequence[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return _empty()
    return pa.concat_tables(tables).combine_chunks()


def concat(findings: Sequence[Findings], check: str = "all") -> Findings:
    """All rows of several findings in one (summaries keyed by each check's name)."""
    return Findings(
        check,
        concat_rows([f.rows for f in findings]),
        {f.check: f.summary for f in findings},
    )
