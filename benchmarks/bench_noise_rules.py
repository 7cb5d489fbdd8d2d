"""Issue 17: can a flag rule on the label-noise scores meet the `noisy` target on every seed,
and how far is the ranking from what the same lapse model reaches with the true margins?

Per seed (simulator `noisy`, 3 votes per pair, the annotators and noise checks of
`run_audit`, truth = `flipped_ids`, as `tests/audit/test_simulated.py` computes them):
precision P and recall R of the rows each flag rule selects, and precision at recall 0.6
(P@R0.6) along the score ranking. Rules:

- `current`: the audit's own flags (smallest t ≥ 0.5 with expected precision ≥ 0.8);
- `ep0.85`: the largest top set whose mean score (expected precision) is ≥ 0.85, no floor;
- `fbB`: the top set that maximises the expected F_B of the flags under the scores
  (expected true flags = sum of their scores, expected flips = sum of all scores), among
  the sets with expected precision ≥ 0.8.

Over all seeds: a reliability table of the scores (mean score against the flipped share,
per score bin). `--true-margin` adds, per seed, the same noise check given the true margin
of each pair as its prior (`fit_noise(p_a=σ(m))`, m = 2·(quality_a − quality_b) +
0.5·(len_a − len_b)/100, the simulator's judgement without position): the ceiling of a
better feature model under this lapse model (the spammer rule there sees the same prior). Development seeds are 10 and up; seeds 0-9 are the test's.

    .venv/bin/python benchmarks/bench_noise_rules.py --seeds 10 11 ... [--true-margin]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from prefkit.audit.run import run_audit  # noqa: E402
from prefkit.schema import Kind  # noqa: E402
from prefkit.simulate import simulate  # noqa: E402

BETAS = (0.7, 0.75, 0.8, 0.85, 0.9, 1.0)
EDGES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.01)


def top_set(score: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Rows scoring at least the score at the last position where `keep` (per position of
    the descending order) holds; none when it never does."""
    s = np.sort(score)[::-1]
    ok = np.flatnonzero(keep)
    return score >= s[ok[-1]] if ok.size else np.zeros(score.size, dtype=bool)


def rules(score: np.ndarray) -> dict[str, np.ndarray]:
    s = np.sort(score)[::-1]
    k = np.arange(1, s.size + 1)
    etp = np.cumsum(s)
    out = {"ep0.85": top_set(score, etp / k >= 0.85)}
    for b in BETAS:
        f = (1 + b * b) * etp / (k + b * b * score.sum())
        f[etp / k < 0.8] = -1.0
        best = np.zeros(s.size, dtype=bool)
        best[: int(np.argmax(f)) + 1] = True
        out[f"fb{b}"] = top_set(score, best) if f.max() > 0 else best & False
    return out


def metrics(score: np.ndarray, y: np.ndarray, flagged: np.ndarray, n_flip: int) -> dict[str, float]:
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(y[order])
    rec = cum / n_flip
    prec = cum / np.arange(1, y.size + 1)
    tp = int((flagged & y).sum())
    return {
        "P": round(tp / max(int(flagged.sum()), 1), 4),
        "R": round(tp / n_flip, 4),
        "P@R0.6": round(float(prec[np.searchsorted(rec, 0.6)]), 4),
    }


def true_margin(seed: int, sim: Any) -> dict[str, float]:
    import pyarrow.compute as pc

    from prefkit.audit.frame import Frame
    from prefkit.audit.noise import fit_noise, threshold_for

    t = sim.tables[Kind.COMPARISONS]
    meta = t.column("meta").combine_chunks()
    qa = np.asarray(pc.map_lookup(meta, "quality_a", "first").cast("float64"))
    qb = np.asarray(pc.map_lookup(meta, "quality_b", "first").cast("float64"))
    la = np.array([len(m[0]["content"]) for m in t.column("response_a").to_pylist()])
    lb = np.array([len(m[0]["content"]) for m in t.column("response_b").to_pylist()])
    m = 2.0 * (qa - qb) + 0.5 * (la - lb) / 100.0
    f = Frame.of(t)
    flipped = set(sim.truth["flipped_ids"])
    y = np.isin(np.asarray(f.take_ids(np.arange(f.n)).to_pylist()), list(flipped))
    model = fit_noise(f, p_a=1.0 / (1.0 + np.exp(-m)))
    flagged = model.suspicion >= threshold_for(model.suspicion)[0]
    out = metrics(model.suspicion, y, flagged, len(flipped))
    return {f"true_margin_{k}": v for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 30)))
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--true-margin", action="store_true")
    args = ap.parse_args()
    met: dict[str, int] = {}
    bins = np.zeros((3, len(EDGES) - 1))
    for seed in args.seeds:
        sim = simulate("noisy", size=args.size, seed=seed, votes_per_pair=3)
        res = run_audit(sim.tables[Kind.COMPARISONS], checks=("annotators", "noise"))
        flipped = set(sim.truth["flipped_ids"])
        y = np.isin(np.asarray(res.row_ids.to_pylist()), list(flipped))
        score = np.asarray(res.noise_score, dtype=np.float64)
        cur = np.isin(
            np.asarray(res.row_ids.to_pylist()), list(res.checks["noise"].row_ids("noisy_label"))
        )
        row: dict[str, Any] = {"seed": seed}
        for name, flags in {"current": cur, **rules(score)}.items():
            m = metrics(score, y, flags, len(flipped))
            ok = m["P"] >= 0.8 and m["R"] >= 0.6 and m["P@R0.6"] >= 0.8
            met[name] = met.get(name, 0) + int(ok)
            row[name] = m
        if args.true_margin:
            row |= true_margin(seed, sim)
        b = np.digitize(score, EDGES) - 1
        bins[0] += np.bincount(b, minlength=bins.shape[1])[: bins.shape[1]]
        bins[1] += np.bincount(b, weights=score, minlength=bins.shape[1])[: bins.shape[1]]
        bins[2] += np.bincount(b, weights=y, minlength=bins.shape[1])[: bins.shape[1]]
        print(json.dumps(row), flush=True)
    print(json.dumps({"seeds": len(args.seeds), "target_met": met}))
    for i in range(bins.shape[1]):
        n = max(bins[0, i], 1)
        print(
            f"score [{EDGES[i]:.2f}, {EDGES[i + 1]:.2f}): rows {int(bins[0, i])}, "
            f"mean score {bins[1, i] / n:.3f}, flipped {bins[2, i] / n:.3f}"
        )


if __name__ == "__main__":
    main()
