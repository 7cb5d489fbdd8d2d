"""The label-noise target on `noisy` seed by seed: precision and recall of the flagged rows
and precision at recall 0.6 along the score ranking, exactly as
`tests/audit/test_simulated.py::test_flipped_votes_found_with_three_votes_per_pair` computes
them (the annotators and noise checks of `run_audit`; truth = `flipped_ids`). Development
seeds are 10 and up; seeds 0-9 are the test's.

    .venv/bin/python benchmarks/bench_noise_seeds.py [--seeds 10 11 ...] [--size 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from prefkit.audit.run import run_audit  # noqa: E402
from prefkit.schema import Kind  # noqa: E402
from prefkit.simulate import simulate  # noqa: E402


def measure(seed: int, size: int) -> dict[str, float]:
    t0 = time.perf_counter()
    sim = simulate("noisy", size=size, seed=seed, votes_per_pair=3)
    res = run_audit(sim.tables[Kind.COMPARISONS], checks=("annotators", "noise"))
    flipped = set(sim.truth["flipped_ids"])
    y = np.isin(np.asarray(res.row_ids.to_pylist()), list(flipped))
    flagged = res.checks["noise"].row_ids("noisy_label")
    tp = len(flagged & flipped)
    order = np.argsort(-res.noise_score, kind="stable")
    cum = np.cumsum(y[order])
    rec = cum / y.sum()
    prec = cum / np.arange(1, y.size + 1)
    noise = res.summary["noise"]
    return {
        "seed": seed,
        "precision": round(tp / max(len(flagged), 1), 4),
        "recall": round(tp / len(flipped), 4),
        "precision_at_recall_0.6": round(float(prec[np.searchsorted(rec, 0.6)]), 4),
        "threshold": round(float(noise["threshold"]), 4),
        "expected_precision": round(float(noise["expected_precision"]), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 20)))
    ap.add_argument("--size", type=int, default=20000)
    args = ap.parse_args()
    for s in args.seeds:
        m = measure(s, args.size)
        ok = m["precision"] >= 0.8 and m["recall"] >= 0.6 and m["precision_at_recall_0.6"] >= 0.8
        print(json.dumps(m | {"target_met": ok}), flush=True)


if __name__ == "__main__":
    main()
