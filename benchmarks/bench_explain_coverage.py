"""Does `prefkit explain` find what was planted, with honest intervals?

    .venv/bin/python benchmarks/bench_explain_coverage.py                   # 100 x planted 5000
    .venv/bin/python benchmarks/bench_explain_coverage.py --datasets 20 --json out.json
    .venv/bin/python benchmarks/bench_explain_coverage.py --people 5        # + pluralistic ARI
    .venv/bin/python benchmarks/bench_explain_coverage.py --workers 2       # data sets in parallel

For each of `--datasets` simulated `planted` data sets (annotators who judge by style alone:
likes lists, dislikes hedging, prefers length, Davidson ties; truth.json holds the true
weights per SD), runs explain's feature effects with its defaults (100 cluster-bootstrap
rounds, 95% intervals, stability selection at the cross-validated L1 strength) and records,
per feature: whether the interval covers the truth (0 for unplanted features), whether the
sign of a planted effect is recovered (estimate and interval on the right side of 0), and
whether the feature is selected. Prints coverage with its binomial standard error, sign
recovery, and the selection rate of every feature (claim: planted ones selected, no unplanted
one in more than 5% of runs).

With `--people N`, also runs the annotator basis on N `pluralistic` data sets at two densities
(the default ~150 votes per annotator, and 24 annotators: ~420 votes each) and prints the
adjusted Rand index between the clusters and the true groups; with `--people-context C`, at
the default density without and with explain's `--context C` instead (`--people-seed S`: the
first world's seed; `--datasets 0` skips the coverage part).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from prefkit.explain.data import votes_from_table
from prefkit.explain.effects import EffectOptions, design, feature_effects
from prefkit.schema import Kind
from prefkit.simulate import simulate

EMBED_CACHE = Path("benchmarks/.cache/embeddings")  # MiniLM vectors of the prompts (--context)


def one(seed: int, size: int) -> dict[str, Any]:
    sim = simulate("planted", size=size, seed=seed)
    truth = sim.truth["planted"]["weights_per_sd"]
    v = votes_from_table(sim.tables[Kind.COMPARISONS])
    d = design(v)
    eff = feature_effects(v, d, EffectOptions(seed=seed))
    out = {}
    for r in eff.rows:
        t = float(truth.get(r["feature"], 0.0))
        out[r["feature"]] = {
            "truth": t,
            "coef": r["coef"],
            "covered": bool(r["ci_low"] <= t <= r["ci_high"]),
            "sign": bool((t > 0 and r["ci_low"] > 0) or (t < 0 and r["ci_high"] < 0))
            if t != 0
            else None,
            "selected": bool(r["selected"]),
            "freq": r["selection_freq"],
        }
    return out


def people(
    seed: int, annotators: int, context: int = 0, cache: Path = EMBED_CACHE
) -> dict[str, Any]:
    from sklearn.metrics import adjusted_rand_score

    from prefkit.explain.run import ExplainOptions, explain_table

    kw = {"annotators": annotators} if annotators else {}
    sim = simulate("pluralistic", seed=seed, **kw)
    # the basis and clusters use the point estimates only: fewer bootstrap rounds and
    # stability pairs than explain's defaults leave them unchanged and save most of the time
    opts = ExplainOptions(directions=0, context=context, embed_cache=cache,
                          effects=EffectOptions(rounds=2, stability_pairs=2))  # fmt: skip
    res = explain_table(sim.tables[Kind.COMPARISONS], opts)
    p = res.summary["people"]
    lab = [m["cluster"] for m in p["members"]]
    tr = [sim.truth["annotators"][m["group"]]["params"]["group"] for m in p["members"]]
    votes = float(np.mean([m["votes"] for m in p["members"]]))
    # the Bayes classifier (each annotator to the group whose true model makes its votes most
    # likely; truth `group_loglik`): what the votes allow when every parameter is known
    gl = sim.truth["group_loglik"]
    names = sorted(gl)
    bayes = adjusted_rand_score(
        [sim.truth["annotators"][a]["params"]["group"] for a in names],
        [max(gl[a], key=gl[a].get) for a in names],
    )
    return {"ari": adjusted_rand_score(tr, lab), "k": p["n_clusters"], "votes_each": votes,
            "ari_bayes": bayes, "context": context}  # fmt: skip


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--people", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--people-context", type=int, default=0,
                    help="with --people: the basis at the default density also with --context N "
                    "(prompt-context columns), beside the plain one")  # fmt: skip
    ap.add_argument("--people-seed", type=int, default=None,
                    help="first seed of the --people worlds (default: --seed)")  # fmt: skip
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help=f"MiniLM embedding cache of the prompts (default {EMBED_CACHE}).")  # fmt: skip
    ap.add_argument("--workers", type=int, default=1, help="data sets fitted in parallel")
    args = ap.parse_args()

    t0 = time.perf_counter()
    runs = []
    seeds = [args.seed + k for k in range(args.datasets)]
    with ProcessPoolExecutor(args.workers, initializer=_one_thread) as pool:
        for k, r in enumerate(pool.map(one, seeds, [args.size] * len(seeds))):
            runs.append(r)
            if (k + 1) % 10 == 0:
                print(f"{k + 1} data sets, {time.perf_counter() - t0:.0f} s", flush=True)
    summary: dict[str, Any] = {"datasets": len(runs), "size": args.size, "seed": args.seed}
    summary["features"] = {}
    if runs:
        report(runs, args, summary, t0)
    if args.people:
        from scipy.stats import t as student

        rows = []
        s0 = args.seed if args.people_seed is None else args.people_seed
        # with --people-context: the default density, plain and with context; else both densities
        ctx_n = args.people_context
        runs_p = [(0, 0), (0, ctx_n)] if ctx_n else [(0, 0), (24, 0)]
        for annotators, ctx in runs_p:
            for k in range(args.people):
                r = people(s0 + k, annotators, ctx, args.cache_dir or EMBED_CACHE)
                rows.append(r | {"annotators": annotators or "default"})
                print(
                    f"pluralistic seed {s0 + k} annotators {annotators or 'default'} context "
                    f"{ctx}: {r['votes_each']:.0f} votes each, K={r['k']}, ARI {r['ari']:.3f} "
                    f"(Bayes classifier {r['ari_bayes']:.3f})",
                    flush=True,
                )
            aris = np.array([r["ari"] for r in rows[-args.people :]])
            half = float(student.ppf(0.975, max(aris.size - 1, 1)) * aris.std(ddof=1)
                         / np.sqrt(aris.size)) if aris.size > 1 else 0.0  # fmt: skip
            print(f"annotators {annotators or 'default'} context {ctx}: mean ARI "
                  f"{aris.mean():.3f} [{aris.mean() - half:.3f}, {aris.mean() + half:.3f}]",
                  flush=True)  # fmt: skip
        summary["people"] = rows
    summary["seconds"] = time.perf_counter() - t0
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)


def report(runs: list[dict[str, Any]], args: Any, summary: dict[str, Any], t0: float) -> None:
    feats = sorted({f for r in runs for f in r})
    planted = sorted({f for r in runs for f, x in r.items() if x["truth"] != 0})
    print(f"\n{len(runs)} planted data sets x {args.size} votes, {time.perf_counter() - t0:.0f} s")
    print(f"{'feature':18s} {'planted':>7s} {'coverage':>14s} {'sign ok':>8s} {'selected':>9s}")
    cov_all = []
    for f in feats:
        xs = [r[f] for r in runs if f in r]
        cov = np.mean([x["covered"] for x in xs])
        se = np.sqrt(cov * (1 - cov) / len(xs))
        sel = np.mean([x["selected"] for x in xs])
        sign = np.mean([x["sign"] for x in xs]) if f in planted else float("nan")
        cov_all += [x["covered"] for x in xs]
        summary["features"][f] = {
            "planted": f in planted, "runs": len(xs), "coverage": float(cov),
            "coverage_se": float(se), "sign_recovered": float(sign), "selected": float(sel),
            "mean_estimate": float(np.mean([x["coef"] for x in xs])),
            "truth_mean": float(np.mean([x["truth"] for x in xs])),
        }  # fmt: skip
        print(
            f"{f:18s} {'yes' if f in planted else '':>7s} {cov:8.3f} ± {se:.3f} "
            f"{'' if f not in planted else f'{sign:8.2f}':>8s} {sel:9.2f}"
        )
    c = float(np.mean(cov_all))
    summary["coverage_all"] = c
    summary["coverage_all_se"] = float(np.sqrt(c * (1 - c) / len(cov_all)))
    unplanted = [summary["features"][f]["selected"] for f in feats if f not in planted]
    summary["max_unplanted_selection"] = max(unplanted) if unplanted else 0.0
    summary["min_planted_selection"] = min(summary["features"][f]["selected"] for f in planted)
    print(
        f"all intervals: coverage {c:.3f} ± {summary['coverage_all_se']:.3f} (nominal 0.95); "
        f"planted selected in >= {summary['min_planted_selection']:.2f} of runs; unplanted "
        f"selected in <= {summary['max_unplanted_selection']:.2f}"
    )


if __name__ == "__main__":
    main()
