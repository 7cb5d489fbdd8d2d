"""Pairs for reward models: texts, soft labels and weights from a canonical comparisons table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.schema import Kind, kind_of, messages_text


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
        )


def _meta_float(meta: list[dict[str, str] | list[tuple[str, str]] | None], key: str) -> list[float]:
    out: list[float] = []
    for m in meta:
        d = dict(m) if m else {}
        try:
            out.append(float(d[key]))
        except (KeyError, ValueError):
            out.append(float("nan"))
    return out


def pairs_from_table(table: pa.Table) -> Pairs:
    """Comparisons → Pairs. Rows with outcome `both_bad` or missing texts are kept with y = 0.5
    and outcome as is (training drops `both_bad`; evaluation treats it as a tie-like row).

    `strength` (0..1) grades the label: y = 0.5 ± 0.5·strength. A `weight` column (or
    meta["weight"]) weights rows; a `margin` column (or meta["margin"]) is kept for TRL.
    """
    if kind_of(table) is not Kind.COMPARISONS:
        raise ValueError("reward models need a comparisons table (response_a, response_b, outcome)")
    n = table.num_rows
    cols = table.column_names
    outcome = [str(o) for o in table.column("outcome").to_pylist()]
    strength = table.column("strength").to_pylist() if "strength" in cols else [None] * n
    y = np.empty(n, dtype=np.float64)
    for i, (o, s) in enumerate(zip(outcome, strength, strict=True)):
        g = 1.0 if s is None else float(s)
        y[i] = 0.5 + 0.5 * g if o == "a" else 0.5 - 0.5 * g if o == "b" else 0.5
    meta = table.column("meta").to_pylist() if "meta" in cols else [None] * n
    if "weight" in cols:
        w = np.array(table.column("weight").to_pylist(), dtype=np.float64)
    else:
        w = np.array(_meta_float(meta, "weight"), dtype=np.float64)
    w = np.where(np.isfinite(w), w, 1.0)
    if "margin" in cols:
        mg = np.array(table.column("margin").to_pylist(), dtype=np.float64)
    else:
        mg = np.array(_meta_float(meta, "margin"), dtype=np.float64)
    cat = []
    for m in meta:
        d = dict(m) if m else {}
        cat.append(str(d.get("category") or d.get("subset") or ""))
    aspect = table.column("aspect").to_pylist() if "aspect" in cols else [None] * n
    cat = [c or (a or "") for c, a in zip(cat, aspect, strict=True)]
    return Pairs(
        ids=[str(x) for x in table.column("id").to_pylist()],
        prompt_ids=[str(x) for x in table.column("prompt_id").to_pylist()],
        prompts=[messages_text(p) for p in table.column("prompt").to_pylist()],
        a=[messages_text(r) for r in table.column("response_a").to_pylist()],
        b=[messages_text(r) for r in table.column("response_b").to_pylist()],
        outcome=outcome,
        y=y,
        weight=w,
        margin=mg,
        source=[str(s or "") for s in table.column("source").to_pylist()],
        category=cat,
        shown_first=table.column("shown_first").to_pylist()
        if "shown_first" in cols
        else [None] * n,
    )
