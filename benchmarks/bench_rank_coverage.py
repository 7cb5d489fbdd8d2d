"""Coverage of prefkit's default 95% intervals at 50, 1,000 and 10,000 items.

    .venv/bin/python benchmarks/bench_rank_coverage.py                    # all three levels
    .venv/bin/python benchmarks/bench_rank_coverage.py --levels 50 --datasets-50 40

The truth at every level is the *estimand* of the fitted model: the value its estimates
converge to under the data-generating process, computed exactly from the outcome
probabilities (`prefkit.simulate.world.pair_model_estimand`, an independent scipy fit), so a
miss is the interval's fault, not a mismatch between what the model estimates and what the
simulator calls the truth.

- 50 items: the simulator's `arena` scenario (`n_models=50`, text-free, one crowd vote per
  battle, Davidson ties and both_bad), a new world per dataset; truth =
  `truth.json` `model_bt_half_strength` (Bradley-Terry with ties as half a win, the default
  model), centred.
- 1,000 and 10,000 items: strengths N(0, 1), a fixed design of battles/2 random pairs, each
  battle a uniformly drawn design pair with a Davidson outcome (nu = 0.5, ~20% ties); truth =
  the bt-half estimand over the design pairs. Strengths and design are drawn once per level;
  each dataset redraws the battles.

Every dataset is ranked with `prefkit.rank` defaults (`RankOptions()`: bt, ties half,
`--ci auto`, 1,000 rounds, 95%), which picks the bootstrap at 50 items and the one-step
bootstrap at 1,000 and 10,000. Coverage = share of item intervals containing the centred
truth; its standard error is computed across datasets (intervals within a dataset are
correlated). At 50 items the other methods are reported beside the default.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from prefkit.rank import bt
from prefkit.rank.data import aggregate, battles, battles_from_table
from prefkit.rank.run import RankOptions, interval_method, intervals
from prefkit.schema import Kind
from prefkit.simulate import simulate
from prefkit.simulate.personas import davidson
from prefkit.simulate.world import pair_model_estimand

DEFAULTS = RankOptions()


def synthetic_world(
    k: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Strengths, design pairs (i < j), their Davidson outcome probabilities, and truth."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, k)
    n_pairs = max(k, n // 2)
    a = rng.integers(0, k, 2 * n_pairs)
    b = (a + rng.integers(1, k, a.size)) % k
    key = np.unique(np.minimum(a, b) * k + np.maximum(a, b))[:n_pairs]
    i, j = key // k, key % k
    pi, pj, pt = davidson(theta[i] - theta[j], 0.5)
    truth, _ = pair_model_estimand(i, j, pi, pj, pt, "bt-half")
    return i, j, np.stack([pi, pj, pt], axis=1), theta, truth


def synthetic_battles(
    i: np.ndarray, j: np.ndarray, probs: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pick = rng.integers(0, i.size, n)
    u = rng.random(n)
    cum = np.cumsum(probs[pick], axis=1)
    out = (u[:, None] > cum[:, :2]).sum(axis=1)  # 0 = i wins, 1 = j wins, 2 = tie
    flip = rng.random(n) < 0.5  # who is shown as "a"
    a = np.where(flip, j[pick], i[pick])
    b = np.where(flip, i[pick], j[pick])
    out = np.where(flip & (out < 2), 1 - out, out)
    return a, b, out


def covered(p: bt.Problem, f: bt.Fit, truth: np.ndarray, o: RankOptions, seed: int) -> float:
    iv = intervals(p, f, o, np.random.default_rng(seed))
    tv = truth - truth.mean()
    return float(((iv.low <= tv) & (tv <= iv.high)).mean())


def level_arena(datasets: int, size: int, seed: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for d in range(datasets):
        sim = simulate("arena", size=size, seed=seed + d, text=False, n_models=50)
        c = aggregate(battles_from_table(sim.tables[Kind.COMPARISONS]))
        p = bt.problem(c, DEFAULTS.config())
        f = bt.fit_problem(p)
        t = sim.truth["model_bt_half_strength"]
        truth = np.array([t[m] for m in f.items])
        name, _ = interval_method(p, DEFAULTS)
        out.setdefault(f"default ({name})", []).append(covered(p, f, truth, DEFAULTS, d))
        for other in ("one-step", "sandwich"):
            o = replace(DEFAULTS, ci=other)  # type: ignore[arg-type]
            out.setdefault(other, []).append(covered(p, f, truth, o, d))
    return out


def level_synthetic(k: int, n: int, datasets: int, seed: int) -> dict[str, list[float]]:
    i, j, probs, _, truth = synthetic_world(k, n, seed)
    names = np.array([f"m{q:06d}" for q in range(k)], dtype=object)
    out: dict[str, list[float]] = {}
    for d in range(datasets):
        rng = np.random.default_rng([seed, d])
        a, b, o = synthetic_battles(i, j, probs, n, rng)
        c = aggregate(battles(names[a], names[b], o))
        p = bt.problem(c, DEFAULTS.config())
        f = bt.fit_problem(p)
        order = np.array([int(s[1:]) for s in f.items])
        name, _ = interval_method(p, DEFAULTS)
        out.setdefault(f"default ({name})", []).append(covered(p, f, truth[order], DEFAULTS, d))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--levels", default="50,1000,10000")
    ap.add_argument("--datasets-50", type=int, default=100)
    ap.add_argument("--size-50", type=int, default=10_000, help="battles per arena dataset")
    ap.add_argument("--datasets-1000", type=int, default=40)
    ap.add_argument("--size-1000", type=int, default=50_000)
    ap.add_argument("--datasets-10000", type=int, default=10)
    ap.add_argument("--size-10000", type=int, default=250_000)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    print(f"bench_rank_coverage: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"{'items':>6s} {'battles':>8s} {'sets':>5s} {'interval':22s} {'coverage':>9s} {'± se':>6s}"
    )
    for level in args.levels.split(","):
        t0 = time.perf_counter()
        k = int(level)
        n = getattr(args, f"size_{k}")
        sets = getattr(args, f"datasets_{k}")
        res = (
            level_arena(sets, n, args.seed)
            if k == 50
            else level_synthetic(k, n, sets, args.seed + k)
        )
        for method, cov in res.items():
            m = float(np.mean(cov))
            se = float(np.std(cov, ddof=1) / np.sqrt(len(cov))) if len(cov) > 1 else float("nan")
            print(f"{k:6d} {n:8d} {sets:5d} {method:22s} {m:9.3f} {se:6.3f}")
        print(f"       ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
