"""`judge audit`: how far can these LLM judges be trusted, and on what?

Works on any comparisons whose annotators are judges — `prefkit judge run` output, or judge
labels collected elsewhere (PandaLM, AlpacaEval, MT-Bench judgments) — with or without human
votes on the same pairs. Votes are grouped into pairs as `prefkit pairs --from-votes` does
(`meta.pair_id`, else the texts) and oriented to one a/b.

Each judge vote is placed in its order: `shown_first` (a or b), or the per-order verdicts
`meta.verdict_ab` / `meta.verdict_ba` that `judge run` records; votes without either have an
unknown order (they count for agreement, ties and length, not for position).

Per judge (and per source of its votes), each with a 95% interval:

- **position**: `p_first_wins` (decisive votes whose order is known; Wilson),
  `consistency` (pairs judged in both orders whose two verdicts agree; Wilson) and
  `position_logit` — the conditional maximum-likelihood estimate ½·log(n₁₀/n₀₁) from pairs
  judged decisively in both orders, n₁₀ = the first-shown response won both times, n₀₁ = the
  second-shown won both times. Under a logistic judge with logit m_i ± γ per order it
  estimates γ whatever the pair effects m_i (the matched-pairs / McNemar odds ratio is e^{2γ});
  SE ½·√(1/n₁₀ + 1/n₀₁) (½ added to each count).
- **verbosity**: `p_longer_wins` (Wilson) and `length_slope`, the logistic-regression slope
  of "a wins" on (len(a) − len(b)) / 100 characters over decisive votes, with pair-clustered
  (sandwich) standard errors; with human votes the human slope on the same pairs and the
  judge's excess over it (SEs combined as if independent: conservative).
- **self-preference** (when the judge's model is among the response models; the judge's
  model is its annotator name without `judge:` and any `org/` prefix, compared case-blind):
  P(the judge picks its own model's response) on pairs where exactly one response is its own,
  minus the same rate among the reference votes on those pairs — human votes when at least
  20 are there, else the other judges' — with Newcombe's hybrid-score interval.
- **ties**: share of votes that are tie or both_bad (Wilson).
- **agreement with the human majority** (with human votes): the human label of a pair is the
  plurality of its human votes over a / b / tie (both_bad counts as tie; a tie for the most
  votes gives tie); the judge's label is its verdict (both orders: agreeing verdicts, else
  tie). Accuracy (ties included; Wilson), accuracy on pairs where both are decisive, Cohen's
  κ, per-class and macro precision / recall / F1 (macro over the classes present, as
  scikit-learn), each with a percentile bootstrap interval over pairs; the confusion matrix.
  `missing`: pairs with a human label but no judge label are dropped (default), counted as a
  judge tie (`tie`, what the PandaLM authors' table did) or as wrong (`wrong`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.reward.evaluate import accuracy_ci

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

Z95 = 1.959963984540054
CODES = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
LABELS3 = ("a", "b", "tie")
MISSING = ("drop", "tie", "wrong")
MIN_HUMAN_REFERENCE = 20


@dataclass(frozen=True)
class Collected:
    """Votes after grouping: one entry per order-level vote."""

    pair: I64
    annotator: I64
    order: I64  # 0 = a shown first, 1 = b shown first, -1 unknown
    verdict: I64  # 0 a, 1 b, 2 tie, 3 both_bad
    source: list[str]  # per vote
    names: list[str]
    is_judge: BOOL  # per annotator
    n_pairs: int
    len_a: F64  # per pair (NaN when the text is missing)
    len_b: F64
    model_a: list[str | None]  # per pair
    model_b: list[str | None]
    pair_ids: list[str]


def _flip(v: str) -> str:
    return {"a": "b", "b": "a"}.get(v, v)


def _text_len(msgs: Any) -> float:
    if msgs is None:
        return float("nan")
    return float(sum(len(str(m.get("content") or "")) for m in msgs))


def collect(
    votes: pa.Table, human: pa.Table | None = None, judges: Sequence[str] | None = None
) -> Collected:
    """Group judge votes (and human votes) by pair and place each judge vote in its order.

    Judges: `judges` when given; else every annotator of `votes` when `human` is given; else
    the annotators named `judge:...`, or all of them when none is."""
    from prefkit.build.pairs import vote_groups
    from prefkit.schema import Kind, conform

    parts = [conform(votes, Kind.COMPARISONS)]
    if human is not None:
        parts.append(conform(human, Kind.COMPARISONS))
    table = pa.concat_tables(parts)
    n_votes_rows = votes.num_rows
    ann = ["(unknown)" if a is None else str(a) for a in table.column("annotator").to_pylist()]
    vote_ann = ann[:n_votes_rows]
    if judges:
        jset = set(judges)
        missing = sorted(jset - set(vote_ann))
        if missing:
            raise ValueError(f"no votes by {', '.join(missing)} in VOTES")
    elif human is not None:
        jset = set(vote_ann)
    else:
        jset = {a for a in vote_ann if a.startswith("judge:")} or set(vote_ann)
    is_judge_row = np.array(
        [i < n_votes_rows and a in jset for i, a in enumerate(ann)], dtype=np.bool_
    )
    gidx, flipped, groups = vote_groups(table)
    names = sorted(set(ann))
    code = {n: i for i, n in enumerate(names)}
    is_judge = np.zeros(len(names), dtype=np.bool_)
    for a, j in zip(ann, is_judge_row.tolist(), strict=True):
        if j:
            is_judge[code[a]] = True
    outcome = table.column("outcome").to_pylist()
    shown = (
        table.column("shown_first").to_pylist()
        if "shown_first" in table.column_names
        else [None] * table.num_rows
    )
    metas = table.column("meta").to_pylist()
    sources = [str(s) if s is not None else "" for s in table.column("source").to_pylist()]
    pair: list[int] = []
    who: list[int] = []
    order: list[int] = []
    verdict: list[int] = []
    src: list[str] = []
    for i in range(table.num_rows):
        f = bool(flipped[i])
        oc = _flip(outcome[i]) if f else outcome[i]
        m = dict(metas[i]) if metas[i] else {}
        placed: list[tuple[int, str]] = []
        sf = shown[i]
        if is_judge_row[i] and sf in ("a", "b"):
            sf = _flip(sf) if f else sf
            placed = [(0 if sf == "a" else 1, oc)]
        elif is_judge_row[i] and ("verdict_ab" in m or "verdict_ba" in m):
            for key, od in (("verdict_ab", 0), ("verdict_ba", 1)):
                v = m.get(key)
                if v in CODES:
                    placed.append(((1 - od) if f else od, _flip(v) if f else v))
        else:
            placed = [(-1, oc)]
        for od, v in placed:
            if v not in CODES:
                continue
            pair.append(int(gidx[i]))
            who.append(code[ann[i]])
            order.append(od)
            verdict.append(CODES[v])
            src.append(sources[i])
    heads = [g[0] for g in groups]
    head = table.take(pa.array(heads, pa.int64()))
    ra, rb = head.column("response_a").to_pylist(), head.column("response_b").to_pylist()
    ma, mb = head.column("model_a").to_pylist(), head.column("model_b").to_pylist()
    hmeta = head.column("meta").to_pylist()
    pid = [str(dict(m).get("pair_id")) if m and "pair_id" in dict(m) else str(i)
           for m, i in zip(hmeta, head.column("id").to_pylist(), strict=True)]  # fmt: skip
    return Collected(
        pair=np.asarray(pair, dtype=np.int64),
        annotator=np.asarray(who, dtype=np.int64),
        order=np.asarray(order, dtype=np.int64),
        verdict=np.asarray(verdict, dtype=np.int64),
        source=src,
        names=names,
        is_judge=is_judge,
        n_pairs=len(groups),
        len_a=np.array([_text_len(x) for x in ra], dtype=np.float64),
        len_b=np.array([_text_len(x) for x in rb], dtype=np.float64),
        model_a=ma,
        model_b=mb,
        pair_ids=pid,
    )


# ---------------------------------------------------------------------------------------
# estimators (pure functions over arrays)


def proportion(k: float, n: float) -> dict[str, Any]:
    """k/n with a Wilson 95% interval (`p`, `ci`, `n`)."""
    n_i = int(round(n))
    if n_i <= 0:
        return {"p": None, "ci": None, "n": 0}
    x = np.zeros(n_i)
    x[: int(round(k))] = 1.0
    r = accuracy_ci(x)
    return {"p": r["accuracy"], "ci": [r["ci_low"], r["ci_high"]], "n": n_i}


def position_logit(n10: int, n01: int) -> dict[str, Any]:
    """Conditional MLE of the position log-odds γ from matched orders (see module doc)."""
    a, b = n10 + 0.5, n01 + 0.5
    g = 0.5 * float(np.log(a / b))
    se = 0.5 * float(np.sqrt(1 / a + 1 / b))
    return {"estimate": g, "ci": [g - Z95 * se, g + Z95 * se], "se": se, "n10": n10, "n01": n01}


def logit_slope(x: F64, y: F64, cluster: I64) -> dict[str, Any] | None:
    """Slope of a logistic regression (with intercept) of y on x, cluster-robust SE."""
    if x.size < 10 or np.ptp(x) == 0 or y.min() == y.max():
        return None
    X = np.column_stack([np.ones_like(x), x])
    th = np.zeros(2)
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-np.clip(X @ th, -35, 35)))
        h = (X * (mu * (1 - mu))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, X.T @ (y - mu))
        th = th + step
        if np.abs(step).max() < 1e-10:
            break
    mu = 1.0 / (1.0 + np.exp(-np.clip(X @ th, -35, 35)))
    h = (X * (mu * (1 - mu))[:, None]).T @ X
    score = X * (y - mu)[:, None]
    _, inv = np.unique(cluster, return_inverse=True)
    g = np.zeros((int(inv.max()) + 1, 2))
    np.add.at(g, inv, score)
    try:
        hinv = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return None
    cov = hinv @ (g.T @ g) @ hinv
    se = float(np.sqrt(max(cov[1, 1], 0.0)))
    b = float(th[1])
    return {"per_100_chars": b, "ci": [b - Z95 * se, b + Z95 * se], "se": se, "n": int(x.size)}


def newcombe_diff(k1: float, n1: float, k2: float, n2: float) -> dict[str, Any] | None:
    """p1 − p2 with Newcombe's hybrid-score (Wilson) 95% interval."""
    if n1 <= 0 or n2 <= 0:
        return None
    a, b = proportion(k1, n1), proportion(k2, n2)
    p1, p2 = float(a["p"]), float(b["p"])
    l1, u1 = a["ci"]
    l2, u2 = b["ci"]
    d = p1 - p2
    lo = d - float(np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    hi = d + float(np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    return {"estimate": d, "ci": [lo, hi]}


def _scores(c: F64) -> dict[str, Any]:
    """Accuracy, κ, per-class and macro P/R/F1 from a confusion matrix (rows = human)."""
    n = c.sum()
    diag = np.diag(c)
    rows, cols = c.sum(1), c.sum(0)
    po = diag.sum() / n if n else np.nan
    pe = (rows * cols).sum() / (n * n) if n else np.nan
    kappa = (po - pe) / (1 - pe) if n and pe < 1 else np.nan
    prec = np.divide(diag, cols, out=np.zeros_like(diag), where=cols > 0)
    rec = np.divide(diag, rows, out=np.zeros_like(diag), where=rows > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(diag), where=(prec + rec) > 0)
    present = (rows + cols) > 0
    return {
        "accuracy": po,
        "kappa": kappa,
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "macro_precision": prec[present].mean() if present.any() else np.nan,
        "macro_recall": rec[present].mean() if present.any() else np.nan,
        "macro_f1": f1[present].mean() if present.any() else np.nan,
    }


def agreement(
    human: I64, judge: I64, rng: np.random.Generator, n_boot: int = 1000
) -> dict[str, Any]:
    """Judge labels vs human labels (0 a, 1 b, 2 tie; judge −1 = always wrong) with
    bootstrap intervals over pairs."""
    n = int(human.size)
    if n == 0:
        return {"n": 0}
    k = 4 if (judge < 0).any() else 3
    jj = np.where(judge < 0, 3, judge)
    c = np.zeros((3, k))
    np.add.at(c, (human, jj), 1.0)
    point = _scores_k(c, k)
    idx = rng.integers(0, n, size=(n_boot, n))
    codes = human[idx] * k + jj[idx]
    flat = (np.arange(n_boot)[:, None] * (3 * k) + codes).ravel()
    cb = np.bincount(flat, minlength=n_boot * 3 * k).reshape(n_boot, 3, k).astype(np.float64)
    boots = [_scores_k(cb[b], k) for b in range(n_boot)]

    def ci(key: str, cls: int | None = None) -> list[float]:
        vals = np.array([b[key] if cls is None else b[key][cls] for b in boots], dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            return [float("nan"), float("nan")]
        return [float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))]

    acc = accuracy_ci((human == judge).astype(np.float64))
    dec = (human < 2) & (judge >= 0) & (judge < 2)
    out: dict[str, Any] = {
        "n": n,
        "accuracy": {"estimate": acc["accuracy"], "ci": [acc["ci_low"], acc["ci_high"]]},
        "decisive_accuracy": proportion(float((human[dec] == judge[dec]).sum()), float(dec.sum())),
        "kappa": {"estimate": _f(point["kappa"]), "ci": ci("kappa")},
    }
    for key in ("macro_precision", "macro_recall", "macro_f1"):
        out[key] = {"estimate": _f(point[key]), "ci": ci(key)}
    out["per_class"] = {
        lab: {
            key: {"estimate": _f(point[key][ci_]), "ci": ci(key, ci_)}
            for key in ("precision", "recall", "f1")
        }
        | {"support": int((human == ci_).sum())}
        for ci_, lab in enumerate(LABELS3)
    }
    cols = list(LABELS3) + (["missing"] if k == 4 else [])
    out["confusion"] = {
        "rows_human": list(LABELS3),
        "cols_judge": cols,
        "counts": c.astype(int).tolist(),
    }
    return out


def _scores_k(c: F64, k: int) -> dict[str, Any]:
    """`_scores` where judge column 3 (when k = 4) is 'missing, counted wrong'."""
    if k == 3:
        return _scores(c)
    sq = np.zeros((4, 4))
    sq[:3, :] = c
    s = _scores(sq)
    n = c.sum()
    diag = np.diag(c[:, :3])
    rows, cols = c.sum(1), c.sum(0)[:3]
    prec = np.divide(diag, cols, out=np.zeros(3), where=cols > 0)
    rec = np.divide(diag, rows, out=np.zeros(3), where=rows > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(3), where=(prec + rec) > 0)
    present = (rows + cols) > 0
    s.update(
        accuracy=diag.sum() / n if n else np.nan,
        precision=prec, recall=rec, f1=f1,
        macro_precision=prec[present].mean() if present.any() else np.nan,
        macro_recall=rec[present].mean() if present.any() else np.nan,
        macro_f1=f1[present].mean() if present.any() else np.nan,
    )  # fmt: skip
    return s


def _f(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def norm_model(name: str | None) -> str:
    s = (name or "").strip().lower()
    if s.startswith("judge:"):
        s = s[len("judge:") :]
    return s.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------
# labels per pair


def human_labels(c: Collected) -> I64:
    """Per pair: plurality of human votes over a/b/tie (both_bad = tie; a tie for the most
    votes = tie); −1 where no human voted."""
    hum = ~c.is_judge[c.annotator]
    cnt = np.zeros((c.n_pairs, 3))
    v3 = np.minimum(c.verdict, 2)
    np.add.at(cnt, (c.pair[hum], v3[hum]), 1.0)
    top = cnt.max(axis=1)
    lab = cnt.argmax(axis=1)
    ties = (cnt == top[:, None]).sum(axis=1) > 1
    lab = np.where(ties, 2, lab)
    return np.where(cnt.sum(axis=1) > 0, lab, -1).astype(np.int64)


def judge_labels(c: Collected, j: int) -> I64:
    """Per pair: judge j's label (0 a, 1 b, 2 tie incl. both_bad), −1 where it did not vote.
    Both orders: the agreed verdict, else tie; otherwise the plurality of its votes."""
    m = c.annotator == j
    p, od, v = c.pair[m], c.order[m], np.minimum(c.verdict[m], 2)
    v0 = np.full(c.n_pairs, -1, dtype=np.int64)
    v1 = np.full(c.n_pairs, -1, dtype=np.int64)
    v0[p[od == 0]] = v[od == 0]
    v1[p[od == 1]] = v[od == 1]
    cnt = np.zeros((c.n_pairs, 3))
    np.add.at(cnt, (p, v), 1.0)
    top = cnt.max(axis=1)
    plural = np.where((cnt == top[:, None]).sum(axis=1) > 1, 2, cnt.argmax(axis=1))
    lab = np.where(cnt.sum(axis=1) > 0, plural, -1)
    both = (v0 >= 0) & (v1 >= 0)
    lab = np.where(both, np.where(v0 == v1, v0, 2), lab)
    return lab.astype(np.int64)


# ---------------------------------------------------------------------------------------
# one judge


def judge_report(
    c: Collected,
    j: int,
    human_lab: I64,
    rng: np.random.Generator,
    n_boot: int = 1000,
    missing: str = "drop",
    pairs: BOOL | None = None,
) -> dict[str, Any]:
    """Every metric of the module docstring for annotator index `j` (restricted to `pairs`)."""
    sel = c.annotator == j
    if pairs is not None:
        sel &= pairs[c.pair]
    p, od, v = c.pair[sel], c.order[sel], c.verdict[sel]
    dec = v < 2
    out: dict[str, Any] = {"votes": int(sel.sum()), "pairs": int(np.unique(p).size)}
    # position
    ordered = dec & (od >= 0)
    out["p_first_wins"] = proportion(float((v[ordered] == od[ordered]).sum()), float(ordered.sum()))
    v0 = np.full(c.n_pairs, -1, dtype=np.int64)
    v1 = np.full(c.n_pairs, -1, dtype=np.int64)
    v0[p[od == 0]] = v[od == 0]
    v1[p[od == 1]] = v[od == 1]
    both = (v0 >= 0) & (v1 >= 0)
    out["consistency"] = proportion(float((v0[both] == v1[both]).sum()), float(both.sum()))
    n10 = int(((v0 == 0) & (v1 == 1)).sum())
    n01 = int(((v0 == 1) & (v1 == 0)).sum())
    out["position_logit"] = position_logit(n10, n01) if both.any() else None
    # ties
    out["tie_rate"] = proportion(float((v == 2).sum()), float(v.size))
    out["both_bad_rate"] = proportion(float((v == 3).sum()), float(v.size))
    # verbosity
    la, lb = c.len_a[p], c.len_b[p]
    ok = dec & np.isfinite(la) & np.isfinite(lb)
    diff = ok & (la != lb)
    longer_won = (v == 0) == (la > lb)
    out["p_longer_wins"] = proportion(float(longer_won[diff].sum()), float(diff.sum()))
    slope = logit_slope(((la - lb) / 100.0)[ok], (v[ok] == 0).astype(np.float64), p[ok])
    out["length_slope"] = slope
    hum_rows = ~c.is_judge[c.annotator]
    on_pairs = np.zeros(c.n_pairs, dtype=np.bool_)
    on_pairs[p] = True
    hm = hum_rows & on_pairs[c.pair] & (c.verdict < 2)
    hp = c.pair[hm]
    hla, hlb = c.len_a[hp], c.len_b[hp]
    hok = np.isfinite(hla) & np.isfinite(hlb)
    hslope = logit_slope(
        ((hla - hlb) / 100.0)[hok], (c.verdict[hm][hok] == 0).astype(np.float64), hp[hok]
    )
    if hslope is not None:
        out["human_length_slope"] = hslope
        if slope is not None:
            d = slope["per_100_chars"] - hslope["per_100_chars"]
            se = float(np.hypot(slope["se"], hslope["se"]))
            out["length_slope_excess"] = {"estimate": d, "ci": [d - Z95 * se, d + Z95 * se]}
    # self-preference
    out["self_preference"] = _self_preference(c, j, sel, pairs)
    # agreement with the human majority
    if (human_lab >= 0).any():
        jl = judge_labels(c, j)
        have_h = human_lab >= 0
        if pairs is not None:
            have_h &= pairs
        if missing == "drop":
            m = have_h & (jl >= 0)
            jv = jl[m]
        else:
            m = have_h
            jv = np.where(jl[m] >= 0, jl[m], 2 if missing == "tie" else -1)
        out["human_agreement"] = agreement(human_lab[m], jv, rng, n_boot) | {
            "missing_judge_label": int((have_h & (jl < 0)).sum()),
            "missing_policy": missing,
        }
    return out


def _self_preference(c: Collected, j: int, sel: BOOL, pairs: BOOL | None) -> dict[str, Any] | None:
    me = norm_model(c.names[j])
    ma = np.array([norm_model(x) == me for x in c.model_a], dtype=np.bool_)
    mb = np.array([norm_model(x) == me for x in c.model_b], dtype=np.bool_)
    own = ma ^ mb
    if pairs is not None:
        own &= pairs
    if not own.any():
        return None
    dec = c.verdict < 2
    mine = sel & dec & own[c.pair]
    own_won = (c.verdict == 0) == ma[c.pair]
    others = dec & own[c.pair] & (c.annotator != j)
    hum = others & ~c.is_judge[c.annotator]
    if hum.sum() >= MIN_HUMAN_REFERENCE:
        ref, kind = hum, "humans"
        with_h = np.zeros(c.n_pairs, dtype=np.bool_)
        with_h[c.pair[hum]] = True
        mine &= with_h[c.pair]  # the same pairs as the reference
    else:
        ref, kind = others & c.is_judge[c.annotator], "other judges"
    k1, n1 = float(own_won[mine].sum()), float(mine.sum())
    k2, n2 = float(own_won[ref].sum()), float(ref.sum())
    return {
        "model": me,
        "own_pairs": int(own.sum()),
        "own_win_rate": proportion(k1, n1),
        "reference": kind,
        "reference_own_win_rate": proportion(k2, n2),
        "excess": newcombe_diff(k1, n1, k2, n2),
    }


def audit_judges(
    votes: pa.Table,
    human: pa.Table | None = None,
    judges: Sequence[str] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    missing: str = "drop",
) -> tuple[dict[str, Any], Collected]:
    """The audit summary (JSON-able) and the collected votes (for the report)."""
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {', '.join(MISSING)}")
    c = collect(votes, human, judges)
    rng = np.random.default_rng(seed)
    hl = human_labels(c)
    jidx = [i for i, _ in enumerate(c.names) if c.is_judge[i]]
    if not jidx:
        raise ValueError("no judge votes found")
    summary: dict[str, Any] = {
        "input": {
            "votes": int(c.pair.size),
            "pairs": c.n_pairs,
            "pairs_with_human_label": int((hl >= 0).sum()),
            "human_annotators": [n for i, n in enumerate(c.names) if not c.is_judge[i]],
        },
        "judges": {},
        "per_source": {},
        "settings": {"seed": seed, "bootstrap": n_boot, "missing": missing},
    }
    for j in jidx:
        summary["judges"][c.names[j]] = judge_report(c, j, hl, rng, n_boot, missing)
    src = np.array(c.source, dtype=object)
    for j in jidx:
        mine = c.annotator == j
        names = sorted(set(src[mine].tolist()))
        if len(names) < 2:
            continue
        for s in names:
            pairs = np.zeros(c.n_pairs, dtype=np.bool_)
            pairs[c.pair[mine & (src == s)]] = True
            summary["per_source"].setdefault(s, {})[c.names[j]] = judge_report(
                c, j, hl, rng, max(200, n_boot // 5), missing, pairs
            )
    return summary, c
