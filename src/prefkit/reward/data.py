"""Pairs for reward models: texts, soft labels and weights from comparisons or build pairs.

Two inputs are accepted:

- a canonical **comparisons** table (`response_a`, `response_b`, `outcome`): `y` = P(a
  preferred) is 1 for `a`, 0 for `b`, 0.5 for `tie`; the graded `strength` (1 = a, 0 = b)
  replaces the hard label when it agrees with the outcome (`soft_label`); `meta["tie"] == "true"` (a build pairs file read back through TRL) is a tie;
- a **pairs** table from `prefkit.build` (`chosen`, `rejected`, `tie`, `weight`, `margin`):
  a = chosen, `y` = 1 (0.5 for ties), `weight` and `margin` kept.

A `weight` column (or `meta["weight"]`) weights the loss; a `margin` column (or
`meta["margin"]`) is passed to TRL. Rows whose response text is null (identity-only data)
cannot be scored: they are left out and counted in `Pairs.skipped["missing_text"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.schema import messages_text


@dataclass(frozen=True)
class Pairs:
    """One row per comparison. `y` is P(a preferred): 1, 0, 0.5 for ties, graded by strength."""

    ids: list[str]
    prompt_ids: list[str]
    prompts: list[str]
    a: list[str]
    b: list[str]
    outcome: list[str]
    y: NDArray[np.float64]
    weight: NDArray[np.float64]
    margin: NDArray[np.float64]
    source: list[str]
    category: list[str]
    shown_first: list[str | None]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: NDArray[np.int64]) -> Pairs:
        il = idx.tolist()
        return Pairs(
            ids=[self.ids[i] for i in il],
            prompt_ids=[self.prompt_ids[i] for i in il],
            prompts=[self.prompts[i] for i in il],
            a=[self.a[i] for i in il],
            b=[self.b[i] for i in il],
            outcome=[self.outcome[i] for i in il],
            y=self.y[idx],
            weight=self.weight[idx],
            margin=self.margin[idx],
            source=[self.source[i] for i in il],
            category=[self.category[i] for i in il],
            shown_first=[self.shown_first[i] for i in il],
            skipped=dict(self.skipped),
        )

    def with_source(self, name: str) -> Pairs:
        """The same rows, every one labelled as coming from source `name` (an input file)."""
        return Pairs(**{**self.__dict__, "source": [name] * len(self)})

    @staticmethod
    def concat(parts: list[Pairs]) -> Pairs:
        """Rows of every part in order; `skipped` counts are added up."""
        if not parts:
            raise ValueError("nothing to concatenate")
        skipped: dict[str, int] = {}
        for p in parts:
            for k, v in p.skipped.items():
                skipped[k] = skipped.get(k, 0) + v
        lists = ("ids", "prompt_ids", "prompts", "a", "b", "outcome", "source", "category")
        arrays = ("y", "weight", "margin")
        out: dict[str, Any] = {k: [x for p in parts for x in getattr(p, k)] for k in lists}
        out.update({k: np.concatenate([getattr(p, k) for p in parts]) for k in arrays})
        out["shown_first"] = [x for p in parts for x in p.shown_first]
        return Pairs(**out, skipped=skipped)

    def empty_responses(self) -> int:
        """Responses (a or b) that are empty or whitespace only (scored, but worth knowing)."""
        return sum(1 for t in self.a + self.b if not t.strip())


def _meta_dicts(table: pa.Table) -> list[dict[str, str]]:
    if "meta" not in table.column_names:
        return [{} for _ in range(table.num_rows)]
    return [dict(m) if m else {} for m in table.column("meta").to_pylist()]


def _meta_float(meta: list[dict[str, str]], key: str) -> NDArray[np.float64]:
    out: list[float] = []
    for d in meta:
        try:
            out.append(float(d[key]))
        except (KeyError, ValueError, TypeError):
            out.append(float("nan"))
    return np.array(out, dtype=np.float64)


def _col(table: pa.Table, name: str, default: Any = None) -> list[Any]:
    if name in table.column_names:
        return list(table.column(name).to_pylist())
    return [default] * table.num_rows


def _floats(table: pa.Table, name: str, meta: list[dict[str, str]]) -> NDArray[np.float64]:
    if name in table.column_names:
        vals = [np.nan if v is None else float(v) for v in table.column(name).to_pylist()]
        return np.array(vals, dtype=np.float64)
    return _meta_float(meta, name)


def soft_label(outcome: str, strength: float | None) -> float:
    """P(a preferred) of one row. `strength` is the graded preference of the schema (1 = a,
    0 = b, 0.5 = no preference); it grades the label when it agrees with the outcome's side,
    otherwise (or when null) the outcome decides: a → 1, b → 0; tie/both_bad → 0.5."""
    if outcome not in ("a", "b"):
        return 0.5
    hard = 1.0 if outcome == "a" else 0.0
    if strength is None or not np.isfinite(strength):
        return hard
    s = min(max(float(strength), 0.0), 1.0)
    return s if (s >= 0.5) == (outcome == "a") or s == 0.5 else hard


def is_pairs_table(table: pa.Table) -> bool:
    """A `prefkit.build` pairs table (chosen/rejected) rather than comparisons."""
    return {"chosen", "rejected"} <= set(table.column_names)


def pairs_from_table(table: pa.Table) -> Pairs:
    """Comparisons or build pairs → :class:`Pairs` (see the module docstring).

    `both_bad` rows are kept (training leaves them out; evaluation counts them); rows without
    response text are left out and counted in `skipped`.
    """
    names = set(table.column_names)
    pairs = is_pairs_table(table)
    if not pairs and not {"response_a", "response_b", "outcome"} <= names:
        raise ValueError(
            "reward models need comparisons (response_a, response_b, outcome) or build pairs "
            "(chosen, rejected); got columns " + ", ".join(sorted(names))
        )
    n = table.num_rows
    meta = _meta_dicts(table)
    col_a, col_b = ("chosen", "rejected") if pairs else ("response_a", "response_b")
    ra, rb = _col(table, col_a), _col(table, col_b)
    if pairs:
        outcome = ["tie" if t else "a" for t in _col(table, "tie", False)]
        strength: list[Any] = [None] * n
    else:
        outcome = [str(o) for o in _col(table, "outcome")]
        outcome = [
            "tie" if m.get("tie", "").lower() == "true" and o in ("a", "b") else o
            for o, m in zip(outcome, meta, strict=True)
        ]
        strength = _col(table, "strength")
    y = np.array([soft_label(o, s) for o, s in zip(outcome, strength, strict=True)])
    w = _floats(table, "weight", meta)
    w = np.where(np.isfinite(w) & (w >= 0), w, 1.0)
    mg = _floats(table, "margin", meta)
    aspect = _col(table, "aspect")
    cat = [
        str(m.get("category") or m.get("subset") or a or "")
        for m, a in zip(meta, aspect, strict=True)
    ]
    keep = np.array(
        [i for i in range(n) if ra[i] is not None and rb[i] is not None], dtype=np.int64
    )
    ids = [str(x) for x in _col(table, "id")]
    out = Pairs(
        ids=ids,
        prompt_ids=[str(x) for x in _col(table, "prompt_id", "")],
        prompts=[messages_text(p) for p in _col(table, "prompt")],
        a=[messages_text(r) for r in ra],
        b=[messages_text(r) for r in rb],
        outcome=outcome,
        y=y,
        weight=w,
        margin=mg,
        source=[str(s or "") for s in _col(table, "source", "")],
        category=cat,
        shown_first=_col(table, "shown_first"),
        skipped={"missing_text": n - int(keep.size)},
    )
    return out if keep.size == n else out.take(keep)
