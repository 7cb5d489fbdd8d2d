"""The columns `prefkit explain` needs, taken once from a canonical comparisons table.

A row is one vote on (response_a, response_b). `both_bad` votes say nothing about a versus b
and rows without response text (identity-only battles) cannot be described by their text:
both are left out and counted in `skipped`. Ties stay (Davidson).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.audit.frame import codes_of, joined_text
from prefkit.engine import BATCH_ROWS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

BY_CHOICES: tuple[str, ...] = ("annotator", "source", "aspect", "group")
PARTS_NEEDING_TEXT = "feature effects, learned directions, principles and the annotator basis"


class ExplainInputError(ValueError):
    """Data `explain` cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Votes:
    ids: list[str]
    prompt: pa.Array  # plain text (large_string)
    a: pa.Array
    b: pa.Array
    y: F64  # (n, 3): a wins, b wins, tie
    group: I64  # prompt cluster (prompt_id code) for folds and the bootstrap
    by: dict[str, list[str | None]]  # annotator, source, aspect, group (meta["group"])
    rows: I64  # row index in the input table
    skipped: dict[str, int] = field(default_factory=dict)
    xa: F64 | None = None  # (n, features): `text_features` of response a, b (None: not yet)
    xb: F64 | None = None
    rows_in: int = 0  # rows read, used or not

    @property
    def n(self) -> int:
        return len(self.ids)

    def take(self, idx: I64) -> Votes:
        arr = pa.array(idx, pa.int64())
        il = idx.tolist()
        return Votes(
            [self.ids[i] for i in il],
            self.prompt.take(arr),
            self.a.take(arr),
            self.b.take(arr),
            self.y[idx],
            self.group[idx],
            {k: [v[i] for i in il] for k, v in self.by.items()},
            self.rows[idx],
            dict(self.skipped),
            None if self.xa is None else self.xa[idx],
            None if self.xb is None else self.xb[idx],
            self.rows_in,
        )


def _col(table: pa.Table, name: str) -> list[str | None]:
    if name not in table.column_names:
        return [None] * table.num_rows
    return [None if v is None else str(v) for v in table.column(name).to_pylist()]


def _meta_key(table: pa.Table, key: str) -> list[str | None]:
    if "meta" not in table.column_names:
        return [None] * table.num_rows
    out: list[str | None] = []
    for m in table.column("meta").to_pylist():
        d = dict(m) if m else {}
        out.append(d.get(key))
    return out


def table_batches(table: pa.Table) -> list[pa.Table]:
    """A table as the batches the feature pass reads (zero-copy slices; one when empty)."""
    step = BATCH_ROWS
    return [table.slice(i, step) for i in range(0, table.num_rows, step)] or [table]


def votes_from_table(table: pa.Table, by_meta: str = "group", keep_text: bool = True) -> Votes:
    """Comparisons -> `Votes` (see module doc), batch by batch (`votes_from_batches`). Raises
    ExplainInputError for a table without usable text or without a decisive vote."""
    return votes_from_batches(table_batches(table), by_meta, keep_text)


def votes_from_batches(
    batches: Iterable[pa.Table], by_meta: str = "group", keep_text: bool = True
) -> Votes:
    """`Votes` from batches of one comparisons table, with the feature matrices of both
    responses computed batch by batch (`Votes.xa`/`xb`). Without `keep_text` each batch's
    text is dropped once its features are computed: memory is the (n, features) matrices,
    ids and groups, not the text."""
    from prefkit.explain.features import text_features

    parts: list[dict[str, Any]] = []
    skipped = {"missing_text": 0, "both_bad": 0}
    n = 0
    for table in batches:
        names = set(table.column_names)
        if not {"response_a", "response_b", "outcome"} <= names:
            raise ExplainInputError(
                "explain needs pairwise comparisons (response_a, response_b, outcome); got "
                "columns " + ", ".join(sorted(names))
            )
        ra, rb = table.column("response_a"), table.column("response_b")
        has_text = np.asarray(pc.and_(pc.is_valid(ra), pc.is_valid(rb)), dtype=bool)
        outcome = np.asarray(table.column("outcome").to_pylist(), dtype=object)
        both_bad = outcome == "both_bad"
        keep = has_text & ~both_bad
        skipped["missing_text"] += int((~has_text).sum())
        skipped["both_bad"] += int((has_text & both_bad).sum())
        idx = np.flatnonzero(keep)
        sub = table.take(pa.array(idx, pa.int64()))
        prompt = (
            joined_text(sub.column("prompt"))
            if "prompt" in names
            else pa.array([""] * len(idx), pa.large_string())
        )
        a, b = joined_text(sub.column("response_a")), joined_text(sub.column("response_b"))
        oc = outcome[idx]
        part: dict[str, Any] = {
            "y": np.stack([oc == "a", oc == "b", oc == "tie"], axis=1).astype(np.float64),
            "pid": _col(sub, "prompt_id"),
            "ids": [str(v) for v in _col(sub, "id")],
            "annotator": _col(sub, "annotator"),
            "source": _col(sub, "source"),
            "aspect": _col(sub, "aspect"),
            "group": _meta_key(sub, by_meta),
            "rows": (idx + n).astype(np.int64),
            "xa": text_features(prompt, a)[0],
            "xb": text_features(prompt, b)[0],
        }
        if keep_text:
            part.update(prompt=prompt, a=a, b=b)
        parts.append(part)
        n += table.num_rows
    if n == 0:
        raise ExplainInputError("no comparisons in the input")
    if skipped["missing_text"] == n:
        raise ExplainInputError(
            f"no response text in any of the {n} rows (model-only battles): {PARTS_NEEDING_TEXT} "
            "need the text of both responses; rank the models with `prefkit rank` instead"
        )
    used = sum(len(p["ids"]) for p in parts)
    if used == 0:
        raise ExplainInputError(
            f"no usable vote: {skipped['both_bad']} both_bad and {skipped['missing_text']} rows "
            "without text; explain needs votes for a, b or tie"
        )
    y = np.concatenate([p["y"] for p in parts])
    if float(y[:, :2].sum()) == 0:
        raise ExplainInputError(
            f"all {int(y.shape[0])} usable votes are ties: nothing says which response is "
            "preferred, so there is no effect to estimate"
        )

    def joined(key: str) -> list[Any]:
        return [x for p in parts for x in p[key]]

    ids, pid = joined("ids"), joined("pid")
    keys = pa.array([p if p is not None else f"row:{i}" for i, p in zip(ids, pid, strict=True)])
    group, _ = codes_of(keys)

    def text(key: str) -> pa.Array:
        if not keep_text:
            return pa.nulls(used, pa.large_string())
        return pa.concat_arrays([p[key] for p in parts])

    return Votes(
        ids=ids,
        prompt=text("prompt"),
        a=text("a"),
        b=text("b"),
        y=y,
        group=group,
        by={k: joined(k) for k in ("annotator", "source", "aspect", "group")},
        rows=np.concatenate([p["rows"] for p in parts]),
        skipped=skipped,
        xa=np.concatenate([p["xa"] for p in parts]),
        xb=np.concatenate([p["xb"] for p in parts]),
        rows_in=n,
    )
