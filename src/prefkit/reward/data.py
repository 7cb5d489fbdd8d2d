"""Turn a canonical comparisons table or a build pairs table into flat pairs for reward models.

Label convention: ``y`` is the probability that response ``a`` is preferred. Outcome ``a`` →
1, ``b`` → 0, ``tie`` → 0.5; a graded ``strength`` s in [0, 1] softens the label to
0.5 ± s/2 in the direction of the outcome. ``both_bad`` rows carry no preference and are
dropped (counted). Pairs tables (``chosen``/``rejected``) give a = chosen, y = 1 (0.5 for
``tie`` rows), and keep their ``weight``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.io.base import InputError


def _text(msgs: Any) -> str:
    if msgs is None:
        return ""
    if isinstance(msgs, str):
        return msgs
    return "\n\n".join(str(m.get("content") or "") for m in msgs)


@dataclass(frozen=True)
class PairData:
    """Flat pairs: prompt text, the two responses, soft label, weight, tie flag, groups."""

    prompt: list[str]
    a: list[str]
    b: list[str]
    y: NDArray[np.float64]
    weight: NDArray[np.float64]
    tie: NDArray[np.bool_]
    prompt_id: list[str]
    source: list[str]
    ids: list[str]
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, idx: NDArray[np.int64]) -> PairData:
        ii = [int(i) for i in idx]
        return PairData(
            prompt=[self.prompt[i] for i in ii],
            a=[self.a[i] for i in ii],
            b=[self.b[i] for i in ii],
            y=self.y[idx],
            weight=self.weight[idx],
            tie=self.tie[idx],
            prompt_id=[self.prompt_id[i] for i in ii],
            source=[self.source[i] for i in ii],
            ids=[self.ids[i] for i in ii],
            dropped=dict(self.dropped),
        )


def is_pairs_table(table: pa.Table) -> bool:
    names = set(table.schema.names)
    return "chosen" in names and "rejected" in names


def pair_data(table: pa.Table, path: str = "<table>") -> PairData:
    """Flatten comparisons or pairs into :class:`PairData` (see module docstring)."""
    names = set(table.schema.names)
    rows = table.to_pylist()
    prompt: list[str] = []
    a: list[str] = []
    b: list[str] = []
    y: list[float] = []
    w: list[float] = []
    tie: list[bool] = []
    pid: list[str] = []
    src: list[str] = []
    ids: list[str] = []
    dropped = {"both_bad": 0, "missing_text": 0}
    if is_pairs_table(table):
        for r in rows:
            ta, tb = _text(r.get("chosen")), _text(r.get("rejected"))
            if r.get("chosen") is None or r.get("rejected") is None:
                dropped["missing_text"] += 1
                continue
            t = bool(r.get("tie") or False)
            prompt.append(_text(r.get("prompt")))
            a.append(ta)
            b.append(tb)
            y.append(0.5 if t else 1.0)
            wt = r.get("weight")
            w.append(1.0 if wt is None else float(wt))
            tie.append(t)
            pid.append(str(r.get("prompt_id") or ""))
            src.append(str(r.get("source") or ""))
            ids.append(str(r.get("id") or len(ids)))
    elif {"response_a", "response_b", "outcome"} <= names:
        for r in rows:
            o = r.get("outcome")
            if o == "both_bad":
                dropped["both_bad"] += 1
                continue
            if r.get("response_a") is None or r.get("response_b") is None:
                dropped["missing_text"] += 1
                continue
            s = r.get("strength")
            if o == "tie":
                lab = 0.5
            else:
                d = 0.5 if s is None else 0.5 * min(max(float(s), 0.0), 1.0)
                lab = 0.5 + d if o == "a" else 0.5 - d
            prompt.append(_text(r.get("prompt")))
            a.append(_text(r.get("response_a")))
            b.append(_text(r.get("response_b")))
            y.append(lab)
            w.append(1.0)
            tie.append(o == "tie")
            pid.append(str(r.get("prompt_id") or ""))
            src.append(str(r.get("source") or ""))
            ids.append(str(r.get("id") or len(ids)))
    else:
        raise InputError(
            path,
            "reward models need comparisons (response_a/response_b/outcome) or pairs "
            "(chosen/rejected); got columns " + ", ".join(sorted(names)),
        )
    if not a:
        raise InputError(path, "no usable pairs (all rows were both_bad or had no text)")
    return PairData(
        prompt=prompt,
        a=a,
        b=b,
        y=np.asarray(y, dtype=np.float64),
        weight=np.asarray(w, dtype=np.float64),
        tie=np.asarray(tie, dtype=np.bool_),
        prompt_id=pid,
        source=src,
        ids=ids,
        dropped=dropped,
    )


def read_pairs(path: str) -> PairData:
    """Read any supported file (autodetected) and flatten it."""
    from prefkit.io.detect import read

    res = read(path)
    return pair_data(res.table, path)
