"""Label noise on the simulator's `noisy` scenario: prefkit's audit vs cleanlab at its best.

Every side gets the same out-of-fold probabilities from prefkit's feature model (style
features, word 1-2-gram differences, model identities; folds by pair). prefkit adds its
lapse model over the votes (item margins, annotator lapse rates and position biases,
confidence grades). cleanlab is run three ways, so it gets the same information:

- `cleanlab 1 row`: `find_label_issues(labels, pred_probs)` on each row alone — the
  handicap: it never sees the other votes on the pair;
- `cleanlab + votes`: pred_probs from an out-of-fold logistic regression on the feature
  model's logit and the other votes on the pair (counts for each side) — the other votes as
  features, as cleanlab's docs suggest for extra information;
- `CROWDLAB`: `cleanlab.multiannotator.get_label_quality_multiannotator` (votes matrix +
  the feature model's per-pair probabilities), cleanlab's own multi-annotator method; a vote
  is flagged when it disagrees with CROWDLAB's consensus, ranked by 1 − its label quality.

For the two `find_label_issues` runs every `filter_by` setting is tried and the one with the
best F1 against the truth is reported (an upper bound for cleanlab). An oracle that knows
every annotator's parameters and the true qualities gives the ceiling.

    .venv/bin/python benchmarks/bench_noise.py [--seeds 0 1 2] [--size 20000] [--votes 3 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prefkit.audit.frame import Frame  # noqa: E402
from prefkit.audit.run import run_audit  # noqa: E402
from prefkit.schema import Kind  # noqa: E402

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pr(flagged: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    tp = int((flagged & y).sum())
    return tp / max(int(flagged.sum()), 1), tp / max(int(y.sum()), 1)


def prec_at_recall(score: np.ndarray, y: np.ndarray, r: float) -> float:
    """Precision of the top rows of the ranking by `score` that reach recall `r`."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(y[order])
    rec = cum / y.sum()
    return float((cum / np.arange(1, y.size + 1))[np.searchsorted(rec, r)])


def cleanlab_best(labels: np.ndarray, probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """`find_label_issues` with every `filter_by`; the best F1 against the truth `y`."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    best: dict[str, Any] = {"f1": -1.0}
    for fb in FILTERS:
        try:
            flag = np.asarray(find_label_issues(labels, probs, filter_by=fb), dtype=bool)
        except (ValueError, AssertionError):  # a setting that cannot run on this data
            continue
        p, r = pr(flag, y)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best["f1"]:
            best = {"f1": f1, "filter_by": fb, "P": p, "R": r, "flag": flag}
    score = 1 - get_label_quality_scores(labels, probs, method="self_confidence")
    best["P@R0.5"] = prec_at_recall(score, y, 0.5)
    best["P@R0.6"] = prec_at_recall(score, y, 0.6)
    best["score"] = score
    return best


def vote_features(f: Frame, rows: np.ndarray) -> np.ndarray:
    """For each decisive row: how many *other* decisive votes on its pair chose its a and
    its b (exact-duplicate copies are not votes)."""
    _, item = np.unique(f.item, return_inverse=True)
    co = f.canonical_outcome
    vote = f.decisive & ~f.is_copy
    ca = np.bincount(item[vote & (co == 0)], minlength=item.max() + 1)[item]
    cb = np.bincount(item[vote & (co == 1)], minlength=item.max() + 1)[item]
    own_a = (vote & (co == 0)).astype(int)
    own_b = (vote & (co == 1)).astype(int)
    oa, ob = ca - own_a, cb - own_b  # others, canonical orientation
    row_a = np.where(f.swapped, ob, oa)  # others who chose this row's response_a
    row_b = np.where(f.swapped, oa, ob)
    return np.column_stack([row_a, row_b])[rows].astype(float)


def probs_with_votes(f: Frame, p_a: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold (by pair) P(label) from a logistic regression on the feature model's logit
    and the other votes on the pair: cleanlab given the information prefkit uses."""
    from sklearn.linear_model import LogisticRegression

    z = np.log(np.clip(p_a, 1e-4, 1 - 1e-4) / np.clip(1 - p_a, 1e-4, 1))[rows]
    v = vote_features(f, rows)
    x = np.column_stack([z, v, v[:, 0] - v[:, 1]])
    y = (f.outcome[rows] == 1).astype(int)
    _, grp = np.unique(f.item[rows], return_inverse=True)
    fold = np.random.default_rng(seed).integers(0, 5, size=grp.max() + 1)[grp]
    out = np.zeros((rows.size, 2))
    for k in range(5):
        te = fold == k
        if not te.any():
            continue
        m = LogisticRegression(C=1.0, max_iter=1000).fit(x[~te], y[~te])
        out[te] = m.predict_proba(x[te])
    return out


def crowdlab(f: Frame, p_a: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """cleanlab's multi-annotator CROWDLAB on the decisive votes in `rows` (canonical
    orientation); returns per-row quality-based noise scores and flags (vote ≠ consensus)."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    _, item = np.unique(f.item[rows], return_inverse=True)
    ann = np.where(f.annotator[rows] >= 0, f.annotator[rows], len(f.annotators))
    _, acol = np.unique(ann, return_inverse=True)
    lab = f.canonical_outcome[rows].astype(float)
    n_items, n_ann = int(item.max()) + 1, int(acol.max()) + 1
    mat = np.full((n_items, n_ann), np.nan)
    mat[item, acol] = lab  # one vote per annotator and pair (copies excluded upstream)
    q = np.where(f.swapped, 1 - p_a, p_a)[rows]  # P(canonical a wins)
    qi = np.bincount(item, weights=q, minlength=n_items) / np.bincount(item, minlength=n_items)
    probs = np.column_stack([qi, 1 - qi])
    res = get_label_quality_multiannotator(
        pd.DataFrame(mat), probs, return_detailed_quality=True, verbose=False
    )
    cons = res["label_quality"]["consensus_label"].to_numpy()
    det = res["detailed_label_quality"].to_numpy()
    quality = det[item, acol]
    return {"score": 1 - np.nan_to_num(quality, nan=1.0), "flag": lab != cons[item]}


def compare(t: pa.Table, y_flip: np.ndarray, multi: bool, seed: int = 0) -> dict[str, Any]:
    """prefkit's audit and cleanlab (three ways) on one table; `y_flip` marks flipped rows."""
    t0 = time.perf_counter()
    res = run_audit(t)
    secs = time.perf_counter() - t0
    ids = np.asarray(res.row_ids.to_pylist())
    flagged = np.isin(ids, list(res.checks["noise"].row_ids("noisy_label")))
    p, r = pr(flagged, y_flip)
    f = Frame.of(t)
    d = f.decisive & ~f.is_copy
    rows = np.flatnonzero(d)
    yr = y_flip[rows]
    labels = (f.outcome[rows] == 1).astype(int)
    p_a = np.asarray(res.p_a)
    one = cleanlab_best(labels, np.column_stack([p_a, 1 - p_a])[rows], yr)
    out: dict[str, Any] = {
        "prefkit": {
            "P": p,
            "R": r,
            "P@R0.3": prec_at_recall(res.noise_score, y_flip, 0.3),
            "P@R0.5": prec_at_recall(res.noise_score, y_flip, 0.5),
            "P@R0.6": prec_at_recall(res.noise_score, y_flip, 0.6),
            "threshold": res.summary["noise"]["threshold"],
        },
        "cleanlab_1row": one,
        "audit_s": secs,
        "flip_rate": float(y_flip.mean()),
    }
    if multi:
        out["cleanlab_votes"] = cleanlab_best(labels, probs_with_votes(f, p_a, rows, seed), yr)
        cl = crowdlab(f, p_a, rows)
        cp, cr = pr(cl["flag"], yr)
        out["crowdlab"] = {
            "P": cp,
            "R": cr,
            "P@R0.5": prec_at_recall(cl["score"], yr, 0.5),
            "P@R0.6": prec_at_recall(cl["score"], yr, 0.6),
        }
    return out


def oracle(t: pa.Table, truth: dict[str, Any]) -> np.ndarray:
    meta = t.column("meta").combine_chunks()
    qa = np.asarray(pc.map_lookup(meta, "quality_a", "first").cast("float64"))
    qb = np.asarray(pc.map_lookup(meta, "quality_b", "first").cast("float64"))
    ann = t.column("annotator").to_pylist()
    par = [truth["annotators"][a]["params"] for a in ann]
    beta = np.array([p.get("beta", 1.5) for p in par])
    flip = np.array([p.get("flip", 0.0) for p in par])
    lam = np.array([p.get("length_bias", 0.0) for p in par])
    gam = np.array([p.get("position_logit", 0.0) for p in par])
    la = np.array([len(m[0]["content"]) for m in t.column("response_a").to_pylist()])
    lb = np.array([len(m[0]["content"]) for m in t.column("response_b").to_pylist()])
    sf = np.where(np.asarray(t.column("shown_first").to_pylist()) == "a", 1.0, -1.0)
    s = 1 / (1 + np.exp(-(beta * (qa - qb) + lam * (la - lb) / 100 + gam * sf)))
    out = np.asarray(t.column("outcome").to_pylist())
    same = np.where(out == "a", s, 1 - s)
    pf = flip * (1 - same) / np.maximum(flip * (1 - same) + (1 - flip) * same, 1e-12)
    return np.where((out == "a") | (out == "b"), pf, 0.0)


def main() -> None:
    from prefkit.simulate import simulate

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--votes", type=int, nargs="+", default=[3, 1])
    args = ap.parse_args()
    print(
        "| votes/pair | seed | prefkit P | prefkit R | prefkit P@R0.6 | cleanlab 1 row P / R "
        "(filter_by) | cleanlab 1 row P@R0.6 | cleanlab + votes P / R (filter_by) "
        "| cleanlab + votes P@R0.6 | CROWDLAB P / R | CROWDLAB P@R0.6 | oracle P@R0.6 "
        "| flip rate | audit s |"
    )
    print("|" + "---|" * 14)
    for vpp in args.votes:
        for seed in args.seeds:
            sim = simulate("noisy", size=args.size, seed=seed, votes_per_pair=vpp)
            t = sim.tables[Kind.COMPARISONS]
            ids = np.asarray(t.column("id").to_pylist())
            y = np.isin(ids, sim.truth["flipped_ids"])
            c = compare(t, y, multi=vpp > 1, seed=seed)
            k, o = c["prefkit"], c["cleanlab_1row"]
            cells = [
                f"{vpp}",
                f"{seed}",
                f"{k['P']:.3f}",
                f"{k['R']:.3f}",
                f"{k['P@R0.6']:.3f}",
                f"{o['P']:.3f} / {o['R']:.3f} ({o['filter_by']})",
                f"{o['P@R0.6']:.3f}",
            ]
            if vpp > 1:
                v, w = c["cleanlab_votes"], c["crowdlab"]
                cells += [
                    f"{v['P']:.3f} / {v['R']:.3f} ({v['filter_by']})",
                    f"{v['P@R0.6']:.3f}",
                    f"{w['P']:.3f} / {w['R']:.3f}",
                    f"{w['P@R0.6']:.3f}",
                ]
            else:
                cells += ["—"] * 4
            cells += [
                f"{prec_at_recall(oracle(t, sim.truth), y, 0.6):.3f}",
                f"{c['flip_rate']:.3f}",
                f"{c['audit_s']:.1f}",
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
