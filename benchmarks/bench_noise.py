"""Label noise on the simulator's `noisy` scenario: prefkit's audit vs cleanlab.

Both get the same out-of-fold probabilities from prefkit's feature model (style features,
word 1-2-gram differences, model identities; folds by prompt); prefkit adds its lapse model
over the votes (item margins, annotator lapse rates and position biases, confidence grades).
An oracle that knows every annotator's parameters and the true qualities gives the ceiling.

    .venv/bin/python benchmarks/bench_noise.py [--seeds 0 1 2] [--size 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.compute as pc

from prefkit.audit.run import run_audit
from prefkit.schema import Kind
from prefkit.simulate import simulate


def pr(flagged: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    tp = int((flagged & y).sum())
    return tp / max(int(flagged.sum()), 1), tp / max(int(y.sum()), 1)


def prec_at_recall(score: np.ndarray, y: np.ndarray, r: float) -> float:
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(y[order])
    rec = cum / y.sum()
    return float((cum / np.arange(1, y.size + 1))[np.searchsorted(rec, r)])


def oracle(t, truth) -> np.ndarray:  # type: ignore[no-untyped-def]
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
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", type=int, default=20000)
    args = ap.parse_args()
    from cleanlab.filter import find_label_issues

    print(
        "| votes/pair | seed | prefkit P | prefkit R | prefkit P@R0.3 | prefkit P@R0.6 "
        "| cleanlab P | cleanlab R | cleanlab P@R0.6 | oracle P@R0.6 | flip rate | audit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for vpp in (3, 1):
        for seed in args.seeds:
            sim = simulate("noisy", size=args.size, seed=seed, votes_per_pair=vpp)
            t = sim.tables[Kind.COMPARISONS]
            t0 = time.perf_counter()
            res = run_audit(t)
            secs = time.perf_counter() - t0
            ids = np.asarray(res.row_ids.to_pylist())
            y = np.isin(ids, sim.truth["flipped_ids"])
            flagged = np.isin(ids, list(res.checks["noise"].row_ids("noisy_label")))
            p, r = pr(flagged, y)
            # cleanlab on the decisive rows, same out-of-fold feature-model probabilities
            out = np.asarray(t.column("outcome").to_pylist())
            d = (out == "a") | (out == "b")
            from prefkit.audit.features import style
            from prefkit.audit.frame import Frame
            from prefkit.audit.noise import fit_noise

            f = Frame.of(t)
            m = fit_noise(f, style(f))
            probs = np.column_stack([m.p_a, 1 - m.p_a])[d]
            labels = (out[d] == "b").astype(int)
            issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
            cl_flag = np.zeros(t.num_rows, dtype=bool)
            cl_flag[np.flatnonzero(d)[issues]] = True
            cp, cr = pr(cl_flag, y)
            cl_score = np.zeros(t.num_rows)
            cl_score[d] = 1 - probs[np.arange(labels.size), labels]
            orc = oracle(t, sim.truth)
            print(
                f"| {vpp} | {seed} | {p:.3f} | {r:.3f} | {prec_at_recall(res.noise_score, y, 0.3):.3f} "
                f"| {prec_at_recall(res.noise_score, y, 0.6):.3f} | {cp:.3f} | {cr:.3f} "
                f"| {prec_at_recall(cl_score, y, 0.6):.3f} | {prec_at_recall(orc, y, 0.6):.3f} "
                f"| {y.mean():.3f} | {secs:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
