"""What do the judgments reward besides quality? Length, position, formatting and refusal
biases, overall and per source. Dataset-level: no rows are flagged; the numbers are in the
summary and the report's plots.

- `length`: P(longer wins) among decisive rows whose responses differ in length, and the
  logistic effect of +100 characters on the log-odds of winning, with a 95% Wald CI.
- `position`: P(shown first wins) among decisive rows where `shown_first` is known; and the
  annotators whose own P(shown first wins) differs from 0.5 with |z| ≥ 3 (≥ 20 votes), with
  the pooled P(first wins) − 0.5 among them (`bias_among_biased`); and a two-group binomial
  mixture over annotators (a share π picks the first-shown response with probability θ, the
  rest with ½) whose `mixture.bias` = θ − ½ is the position bias of the biased group without
  the selection effect of a z cut-off.
- `formatting`: for lists, headers and bold, P(the formatted response wins) among decisive
  rows where exactly one response has it.
- `refusal`: refusal rate among winners vs losers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.audit.features import F64, style
from prefkit.audit.findings import Findings
from prefkit.audit.frame import Frame
from prefkit.audit.stats import logit_fit

CHECK = "bias"
Z95 = 1.959963984540054


def _prop(k: float, n: float) -> dict[str, Any]:
    if n <= 0:
        return {"p": None, "ci": None, "n": 0}
    p = k / n
    se = float(np.sqrt(max(p * (1 - p), 1e-12) / n))
    return {"p": float(p), "ci": [float(p - Z95 * se), float(p + Z95 * se)], "n": int(n)}


def length_bias(f: Frame, rows: NDArray[np.bool_] | None = None) -> dict[str, Any]:
    m = f.decisive & (f.len_a != f.len_b)
    if rows is not None:
        m &= rows
    a_longer = f.len_a > f.len_b
    longer_won = (f.outcome == 0) == a_longer
    out: dict[str, Any] = {"p_longer_wins": _prop(float(longer_won[m].sum()), float(m.sum()))}
    d = f.decisive if rows is None else f.decisive & rows
    if d.sum() >= 20 and np.ptp((f.len_a - f.len_b)[d]) > 0:
        x = ((f.len_a - f.len_b)[d] / 100.0)[:, None].astype(np.float64)
        y = (f.outcome[d] == 0).astype(np.float64)
        fit = logit_fit(x, y, l2=0.0)
        b, se = float(fit.coef[1]), float(fit.se[1])
        out["logit_per_100_chars"] = {"coef": b, "ci": [b - Z95 * se, b + Z95 * se], "se": se}
    else:
        out["logit_per_100_chars"] = None
    return out


def length_curve(f: Frame, bins: int = 10) -> dict[str, list[float]]:
    """P(longer wins) by bins (quantiles) of the length difference."""
    m = f.decisive & (f.len_a != f.len_b)
    diff = np.abs(f.len_a - f.len_b)[m].astype(np.float64)
    won = ((f.outcome == 0) == (f.len_a > f.len_b))[m].astype(np.float64)
    if diff.size < bins:
        return {"x": [], "y": [], "n": []}
    edges = np.unique(np.quantile(diff, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, diff, side="right") - 1, 0, len(edges) - 2)
    n = np.bincount(idx, minlength=len(edges) - 1)
    s = np.bincount(idx, weights=won, minlength=len(edges) - 1)
    mid = np.bincount(idx, weights=diff, minlength=len(edges) - 1)
    ok = n > 0
    return {
        "x": (mid[ok] / n[ok]).tolist(),
        "y": (s[ok] / n[ok]).tolist(),
        "n": n[ok].astype(float).tolist(),
    }


def position_bias(f: Frame, rows: NDArray[np.bool_] | None = None) -> dict[str, Any]:
    m = f.decisive & (f.shown_first >= 0)
    if rows is not None:
        m &= rows
    first_won = f.outcome == f.shown_first
    return {"p_first_wins": _prop(float(first_won[m].sum()), float(m.sum()))}


def position_biased(f: Frame, z_min: float = 3.0, min_votes: int = 20) -> NDArray[np.bool_]:
    """Annotators whose P(shown first wins) differs from 0.5 by z ≥ z_min (≥ min_votes)."""
    na = len(f.annotators)
    m = f.decisive & (f.shown_first >= 0) & (f.annotator >= 0)
    if na == 0 or not m.any():
        return np.zeros(na, dtype=bool)
    n = np.bincount(f.annotator[m], minlength=na).astype(np.float64)
    k = np.bincount(
        f.annotator[m], weights=(f.outcome == f.shown_first)[m].astype(float), minlength=na
    )
    rate = np.divide(k, n, out=np.full(na, 0.5), where=n > 0)
    z = (rate - 0.5) / np.sqrt(0.25 / np.maximum(n, 1))
    return np.asarray((n >= min_votes) & (np.abs(z) >= z_min), dtype=bool)


def position_mixture(f: Frame, iters: int = 200) -> dict[str, Any]:
    """Two-group binomial mixture over annotators: a share π of annotators picks the
    shown-first response with probability θ, the rest with probability ½. Returns θ, π,
    θ − ½ (`bias`) and each annotator's posterior of being position-biased."""
    na = len(f.annotators)
    m = f.decisive & (f.shown_first >= 0) & (f.annotator >= 0)
    if na == 0 or not m.any():
        return {"theta": None, "share": 0.0, "bias": 0.0, "posterior": []}
    n = np.bincount(f.annotator[m], minlength=na).astype(np.float64)
    k = np.bincount(
        f.annotator[m], weights=(f.outcome == f.shown_first)[m].astype(float), minlength=na
    )
    use = n > 0
    n, k = n[use], k[use]
    theta, share = 0.7, 0.2
    w = np.zeros(n.size)
    for _ in range(iters):
        l1 = np.log(share) + k * np.log(theta) + (n - k) * np.log(1 - theta)
        l0 = np.log(1 - share) + n * np.log(0.5)
        w = 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -700, 700)))
        new_share = float(np.clip(w.mean(), 1e-4, 1 - 1e-4))
        new_theta = float(np.clip((w * k).sum() / max((w * n).sum(), 1e-9), 0.501, 0.999))
        if abs(new_theta - theta) < 1e-9 and abs(new_share - share) < 1e-9:
            break
        theta, share = new_theta, new_share
    post = np.zeros(na)
    post[use] = w
    return {"theta": theta, "share": share, "bias": theta - 0.5, "posterior": post.tolist()}


def find_bias(f: Frame, st: dict[str, F64] | None = None) -> Findings:
    st = st if st is not None else style(f)
    summary: dict[str, Any] = {}
    summary["length"] = length_bias(f)
    summary["length_curve"] = length_curve(f)
    summary["position"] = position_bias(f)
    mix = position_mixture(f)
    summary["position"]["mixture"] = {
        "theta": mix["theta"],
        "share_of_annotators": mix["share"],
        "bias": mix["bias"],
    }
    biased = position_biased(f)
    if biased.any():
        rows = (f.annotator >= 0) & biased[np.maximum(f.annotator, 0)]
        pb = position_bias(f, rows)["p_first_wins"]
        summary["position"]["biased_annotators"] = [f.annotators[i] for i in np.flatnonzero(biased)]
        summary["position"]["p_first_wins_biased"] = pb
        summary["position"]["bias_among_biased"] = None if pb["p"] is None else pb["p"] - 0.5
    else:
        summary["position"]["biased_annotators"] = []
        summary["position"]["bias_among_biased"] = 0.0
    d = f.decisive
    a_won = f.outcome == 0
    fmt: dict[str, Any] = {}
    for name in ("list", "header", "bold"):
        xa, xb = st[f"{name}_a"] > 0, st[f"{name}_b"] > 0
        m = d & (xa != xb)
        formatted_won = np.where(xa, a_won, ~a_won)
        fmt[name] = _prop(float(formatted_won[m].sum()), float(m.sum()))
    summary["formatting"] = fmt
    ra, rb = st["refusal_a"] > 0, st["refusal_b"] > 0
    win_ref = np.where(a_won, ra, rb)[d]
    lose_ref = np.where(a_won, rb, ra)[d]
    summary["refusal"] = {
        "winners": float(win_ref.mean()) if win_ref.size else None,
        "losers": float(lose_ref.mean()) if lose_ref.size else None,
        "n": int(d.sum()),
    }
    o = np.bincount(f.outcome, minlength=4)
    summary["outcomes"] = {"a": int(o[0]), "b": int(o[1]), "tie": int(o[2]), "both_bad": int(o[3])}
    per: dict[str, Any] = {}
    if len(f.sources) > 1:
        for s, name in enumerate(f.sources):
            rows = f.source == s
            per[name] = {
                "rows": int(rows.sum()),
                "p_longer_wins": length_bias(f, rows)["p_longer_wins"],
                "p_first_wins": position_bias(f, rows)["p_first_wins"],
            }
    summary["per_source"] = per
    return Findings(CHECK, summary=summary)
