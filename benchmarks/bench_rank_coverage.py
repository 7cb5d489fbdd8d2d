"""Coverage of prefkit's 95% intervals on the simulator's `arena` scenario.

    .venv/bin/python benchmarks/bench_rank_coverage.py                 # 200 datasets x 1500
    .venv/bin/python benchmarks/bench_rank_coverage.py --size 3000 --datasets 100

For each dataset (16 models, one crowd vote per battle, ties and both_bad), fits BT with
ties dropped and Davidson, and checks whether the sandwich, the basic bootstrap and the
percentile bootstrap intervals contain the simulator's true strengths (`model_bt_strength`,
defined on decisive votes, centred). Prints the share of covered intervals (16 per dataset
and method) with its binomial standard error, and the mean slope of estimate on truth
(1 = no systematic expansion or shrinkage).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prefkit.rank import bt, ci
from prefkit.rank.data import aggregate, battles_from_table
from prefkit.schema import Kind
from prefkit.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=1500)
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    hits: dict[tuple[str, str], list[float]] = {}
    slopes: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for d in range(args.datasets):
        sim = simulate("arena", size=args.size, seed=args.seed + d, text=False)
        truth = sim.truth["model_bt_strength"]
        c = aggregate(battles_from_table(sim.tables[Kind.COMPARISONS]))
        for name, cfg in (
            ("bt-drop", bt.RankConfig(ties="drop")),
            ("davidson", bt.RankConfig(model="davidson")),
        ):
            p = bt.problem(c, cfg)
            f = bt.fit_problem(p)
            tv = np.array([truth[m] for m in f.items])
            tv -= tv.mean()
            s = ci.normal_intervals(p, f, "sandwich", draws=10)
            draws = ci.bootstrap_draws(p, f, args.rounds, np.random.default_rng(d))
            lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
            for method, (a, b) in (
                ("sandwich", (s.low, s.high)),
                ("bootstrap-basic", (2 * f.theta - hi, 2 * f.theta - lo)),
                ("bootstrap-percentile", (lo, hi)),
            ):
                hits.setdefault((name, method), []).extend(((a <= tv) & (tv <= b)).tolist())
            slopes.setdefault(name, []).append(float(np.polyfit(tv, f.theta, 1)[0]))
    secs = time.perf_counter() - t0
    print(
        f"arena: {args.datasets} datasets x {args.size} battles, 16 models, {args.rounds} bootstrap rounds ({secs:.0f} s)"
    )
    print(f"{'model':10s} {'interval':22s} {'coverage':>9s} {'± se':>7s} {'intervals':>10s}")
    for (name, method), h in hits.items():
        cov = float(np.mean(h))
        se = float(np.sqrt(cov * (1 - cov) / len(h)))
        print(f"{name:10s} {method:22s} {cov:9.3f} {se:7.3f} {len(h):10d}")
    for name, sl in slopes.items():
        print(f"{name}: mean slope of estimate on truth {np.mean(sl):.3f}")


if __name__ == "__main__":
    main()
