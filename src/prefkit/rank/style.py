"""Style control (as in Chatbot Arena's style-controlled leaderboard): response length and
markdown (headers, list items, bold spans) enter the model as covariates, so a model is not
ranked up for writing longer or more formatted answers.

Features per battle follow Arena's normalisation: for each style element the difference
between the two responses divided by their sum (0 when both are 0), then standardised to
mean 0 and standard deviation 1 over the battles. Length is in characters of the assistant
text (Arena counts tokens; the ratio makes the unit nearly irrelevant). Code blocks are
removed before counting markdown, as Arena does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.rank.bt import Problem, RankConfig, build_problem
from prefkit.rank.data import Battles, RankInputError

F64 = NDArray[np.float64]

FEATURES: tuple[str, ...] = ("length", "headers", "lists", "bold")
_CODE = re.compile(r"```.*?```", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_counts(text: str) -> tuple[int, int, int, int]:
    """(characters, markdown headers, list items, bold spans) of one response."""
    body = _CODE.sub("", text)
    return (
        len(text),
        len(_HEADER.findall(body)),
        len(_LIST.findall(body)),
        len(_BOLD.findall(body)),
    )


def _text(messages: Any) -> str | None:
    if messages is None:
        return None
    parts = [m.get("content") or "" for m in messages if (m.get("role") or "") != "user"]
    if not parts:
        parts = [m.get("content") or "" for m in messages]
    return "\n".join(parts)


def style_features(
    text_a: Sequence[str], text_b: Sequence[str], rows: Sequence[int] | None = None
) -> F64:
    """(battles, 4) standardised normalised differences of `FEATURES` (a minus b)."""
    ca = np.array([style_counts(t) for t in text_a], dtype=np.float64).reshape(-1, 4)
    cb = np.array([style_counts(t) for t in text_b], dtype=np.float64).reshape(-1, 4)
    s = ca + cb
    d = np.divide(ca - cb, s, out=np.zeros_like(s), where=s > 0)
    sd = d.std(axis=0)
    return np.asarray(np.divide(d - d.mean(axis=0), sd, out=np.zeros_like(d), where=sd > 0))


def texts_from_table(table: pa.Table, rows: Sequence[int]) -> tuple[list[str], list[str]]:
    """Assistant texts of the battles' rows; a row without responses is an error."""
    for col in ("response_a", "response_b"):
        if col not in table.column_names:
            raise RankInputError(f"field {col!r}: style control needs the response texts")
    ra = table.column("response_a").take(pa.array(list(rows), pa.int64())).to_pylist()
    rb = table.column("response_b").take(pa.array(list(rows), pa.int64())).to_pylist()
    ta, tb = [], []
    for r, a, b in zip(rows, ra, rb, strict=True):
        xa, xb = _text(a), _text(b)
        if xa is None or xb is None:
            col = "response_a" if xa is None else "response_b"
            raise RankInputError(
                f"row {r}, field {col!r}: null; style control needs both response texts"
            )
        ta.append(xa)
        tb.append(xb)
    return ta, tb


def style_problem(b: Battles, z: F64, config: RankConfig) -> Problem:
    """A problem with one unit per battle and the style features as covariates."""
    if z.shape != (len(b), len(FEATURES)):
        raise RankInputError(f"style features must be ({len(b)}, {len(FEATURES)})")
    k = len(b.items)
    lo = np.minimum(b.a, b.b)
    hi = np.maximum(b.a, b.b)
    swap = b.a > b.b
    rel = np.where(swap & (b.outcome != 2), 1 - b.outcome, b.outcome)
    zz = np.where(swap[:, None], -z, z)
    u = len(b)
    y3 = np.zeros((u, 3))
    y3[np.arange(u), rel] = b.weight
    n = np.zeros((u, 3), dtype=np.int64)
    n[np.arange(u), rel] = 1
    w2 = y3**2
    key = lo * k + hi
    uniq, inv = np.unique(key, return_inverse=True)
    used = np.flatnonzero(np.abs(zz).max(axis=0) > 0) if u else np.zeros(0, dtype=np.int64)
    p = build_problem(
        b.items, lo.astype(np.int64), hi.astype(np.int64), y3, n, w2,
        inv.astype(np.int64), (uniq // k).astype(np.int64), (uniq % k).astype(np.int64),
        zz[:, used] if used.size else None, config,
    )  # fmt: skip
    notes = p.notes
    unused = [FEATURES[q] for q in range(len(FEATURES)) if q not in set(used.tolist())]
    if unused:
        notes = (*notes, f"style features constant over the battles, not used: {', '.join(unused)}")
    return replace(p, z_names=tuple(FEATURES[q] for q in used.tolist()), notes=notes)


def style_coefficients(p: Problem, gamma: F64) -> dict[str, float]:
    """Coefficient per feature (0 for a feature that was constant and not fitted)."""
    got = dict(zip(p.z_names, gamma.tolist(), strict=True))
    return {name: float(got.get(name, 0.0)) for name in FEATURES}
