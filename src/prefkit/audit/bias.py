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

from prefkit.audit.features import F64, Style, style
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


def find_bias(f: Frame, st: Style | None = None) -> Findings:
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
    summary["judges"] = judge_biases(f)
    return Findings(CHECK, summary=summary)


# -- judges: per-annotator position and verbosity bias with intervals ----------------------
#
# Reusable pure functions (also used by `prefkit judge audit`): arrays in, arrays out.

JUDGE_PREFIXES = ("judge:", "reward:")


def is_judge(names: list[str], prefixes: tuple[str, ...] = JUDGE_PREFIXES) -> NDArray[np.bool_]:
    """Which annotator names are AI judges or reward models (`judge:*`, `reward:*`)."""
    return np.array([str(n).startswith(prefixes) for n in names], dtype=bool)


def wilson(k: NDArray[Any] | float, n: NDArray[Any] | float, z: float = Z95) -> tuple[F64, F64]:
    """Wilson score interval for k successes out of n (elementwise; n = 0 gives 0..1)."""
    k_ = np.asarray(k, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n_, 1.0)
    p = k_ / safe
    den = 1 + z * z / safe
    mid = (p + z * z / (2 * safe)) / den
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / den
    lo = np.where(n_ > 0, mid - half, 0.0)
    hi = np.where(n_ > 0, mid + half, 1.0)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def rate_by_group(
    group: NDArray[np.int64], hit: NDArray[np.bool_], mask: NDArray[np.bool_], n_groups: int
) -> dict[str, F64]:
    """Per group: n (rows in `mask`), rate of `hit` among them and its 95% Wilson interval."""
    g = group[mask]
    n = np.bincount(g, minlength=n_groups).astype(np.float64)
    k = np.bincount(g, weights=hit[mask].astype(np.float64), minlength=n_groups)
    rate = np.divide(k, n, out=np.full(n_groups, np.nan), where=n > 0)
    lo, hi = wilson(k, n)
    return {"n": n, "rate": rate, "lo": lo, "hi": hi}


def paired_excess(
    group: NDArray[np.int64], x: F64, ref: F64, mask: NDArray[np.bool_], n_groups: int
) -> dict[str, F64]:
    """Per group: mean of x − ref over the rows in `mask` (e.g. a judge picking the longer
    response, minus the share of human votes on the same pair that did), with a 95% normal
    interval from the rows' spread."""
    g = group[mask]
    d = (x - ref)[mask]
    n = np.bincount(g, minlength=n_groups).astype(np.float64)
    s1 = np.bincount(g, weights=d, minlength=n_groups)
    s2 = np.bincount(g, weights=d * d, minlength=n_groups)
    mean = np.divide(s1, n, out=np.full(n_groups, np.nan), where=n > 0)
    var = np.divide(
        s2 - n * np.nan_to_num(mean) ** 2, n - 1, out=np.full(n_groups, np.nan), where=n > 1
    )
    half = Z95 * np.sqrt(np.clip(var, 0, None) / np.maximum(n, 1))
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half}


def swap_consistency(
    pair: NDArray[np.int64],
    group: NDArray[np.int64],
    winner: NDArray[np.int64],
    first: NDArray[np.int64],
    mask: NDArray[np.bool_],
    n_groups: int,
) -> dict[str, F64]:
    """Pairs a group judged once in each display order: the share where the same response
    won both times, with a Wilson interval. `winner` and `first` are in the pair's own
    orientation (0/1; `first` −1 unknown); `mask` picks decisive votes. A judge that always
    picks the response shown first is never consistent; one without position bias is
    consistent as often as it is sure."""
    m = mask & (first >= 0)
    key = pair[m] * n_groups + group[m]
    uk, inv = np.unique(key, return_inverse=True)
    n0 = np.bincount(inv, weights=(first[m] == 0).astype(np.float64), minlength=uk.size)
    n1 = np.bincount(inv, weights=(first[m] == 1).astype(np.float64), minlength=uk.size)
    wins_a = np.bincount(inv, weights=(winner[m] == 0).astype(np.float64), minlength=uk.size)
    both = (n0 == 1) & (n1 == 1)
    consistent = both & ((wins_a == 0) | (wins_a == 2))
    gk = np.zeros(uk.size, dtype=np.int64)
    gk[inv] = group[m]
    n = np.bincount(gk[both], minlength=n_groups).astype(np.float64)
    k = np.bincount(gk[both], weights=consistent[both].astype(np.float64), minlength=n_groups)
    lo, hi = wilson(k, n)
    rate = np.divide(k, n, out=np.full(n_groups, np.nan), where=n > 0)
    return {"n": n, "rate": rate, "lo": lo, "hi": hi}


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _interval(d: dict[str, F64], key: str, j: int) -> dict[str, Any]:
    return {
        key: _num(float(d[key][j])),
        "ci": None if d["n"][j] == 0 else [_num(float(d["lo"][j])), _num(float(d["hi"][j]))],
        "n": int(d["n"][j]),
    }


def judge_biases(f: Frame, prefixes: tuple[str, ...] = JUDGE_PREFIXES) -> list[dict[str, Any]]:
    """Position and verbosity bias of every judge annotator (`judge:*`, `reward:*`), with
    95% intervals; where people voted on the same pairs, the judge's excess over them.

    Per judge: `position.p_first` (P(the shown-first response wins), where the display
    order is known), `position.swap_consistency` (pairs judged in both orders),
    `position.excess_over_humans` (judge chose the response it saw first, minus the share
    of human votes on that pair choosing that response); `verbosity.p_longer` and
    `verbosity.excess_over_humans` (the same for the longer response);
    `agreement_with_humans` (share of decisive judge votes siding with the human decisive
    majority, ties in the majority left out)."""
    judges = np.flatnonzero(is_judge(f.annotators, prefixes))
    if judges.size == 0:
        return []
    na = len(f.annotators)
    ann = np.where(f.annotator >= 0, f.annotator, na)
    d = f.decisive
    winner = f.canonical_outcome.astype(np.int64)  # 0 a, 1 b in the pair's orientation
    sf = f.shown_first.astype(np.int64)
    first = np.where(sf >= 0, np.where(f.swapped, 1 - sf, sf), -1)
    chose_first = d & (first >= 0) & (winner == first)
    la = np.where(f.swapped, f.len_b, f.len_a)  # lengths in the pair's orientation
    lb = np.where(f.swapped, f.len_a, f.len_b)
    longer = np.where(la > lb, 0, np.where(lb > la, 1, -1))
    chose_longer = d & (winner == longer)
    pos = rate_by_group(ann, chose_first, d & (first >= 0), na + 1)
    verb = rate_by_group(ann, chose_longer, d & (longer >= 0), na + 1)
    swap = swap_consistency(f.pair_key, ann, winner, first, d, na + 1)
    # human reference on the same pair: share of human decisive votes for a
    human = d & ~is_judge(f.annotators + [""], prefixes)[ann]
    _, pk = np.unique(f.pair_key, return_inverse=True)
    hn = np.bincount(pk[human], minlength=int(pk.max()) + 1).astype(np.float64)
    ha = np.bincount(pk[human], weights=(winner[human] == 0).astype(np.float64), minlength=hn.size)
    share_a = np.divide(ha, hn, out=np.full(hn.size, np.nan), where=hn > 0)[pk]
    has_ref = np.isfinite(share_a)
    ref_first = np.where(first == 0, share_a, 1 - share_a)
    ref_longer = np.where(longer == 0, share_a, 1 - share_a)
    pos_x = paired_excess(
        ann, chose_first.astype(np.float64), ref_first, d & (first >= 0) & has_ref, na + 1
    )
    verb_x = paired_excess(
        ann, chose_longer.astype(np.float64), ref_longer, d & (longer >= 0) & has_ref, na + 1
    )
    majority = np.where(share_a > 0.5, 0, np.where(share_a < 0.5, 1, -1))
    agree = rate_by_group(ann, winner == majority, d & has_ref & (majority >= 0), na + 1)
    out: list[dict[str, Any]] = []
    for j in judges.tolist():
        votes = int((ann == j).sum())
        out.append(
            {
                "annotator": f.annotators[j],
                "votes": votes,
                "decisive": int((d & (ann == j)).sum()),
                "position": {
                    "p_first": _interval(pos, "rate", j),
                    "swap_consistency": _interval(swap, "rate", j),
                    "excess_over_humans": _interval(pos_x, "mean", j),
                },
                "verbosity": {
                    "p_longer": _interval(verb, "rate", j),
                    "excess_over_humans": _interval(verb_x, "mean", j),
                },
                "agreement_with_humans": _interval(agree, "rate", j),
            }
        )
    return out
