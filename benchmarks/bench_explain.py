"""Speed of `prefkit explain` on 100k pairs, next to what a user would otherwise run.

    .venv/bin/python benchmarks/bench_explain.py features      # 100k planted pairs
    .venv/bin/python benchmarks/bench_explain.py directions    # 100k pairs, cached embeddings
    .venv/bin/python benchmarks/bench_explain.py dictionary    # SAE vs scikit-learn dictionary

features: the whole command `prefkit explain IN --out DIR --directions 0` (defaults: 100
bootstrap rounds, 5-fold CV, 100 stability fits, the annotator basis) on 100,000 simulated
`planted` pairs, in a subprocess, wall clock; then, in this process on the same data, the
competitor pipeline: the reward stage's per-response features (`response_features`, one Python
call per response) and scikit-learn's `LogisticRegressionCV` (L1, liblinear, 5 folds grouped by
prompt, 10 strengths) on the decisive votes (scikit-learn has no ties). Ratios are printed.

directions: 100,000 votes drawn (Davidson, the planted persona's weights) on pairs of
responses to the same prompt from a pool of a 3,000-pair `planted` simulation, whose 6,000
texts are embedded once (MiniLM, not timed: 10-50 texts/s on this machine, see RESULTS.md)
into a cache. Then the whole command `prefkit explain IN --out DIR --cache-dir CACHE`
(defaults: 32 directions, SAE) runs with every embedding cached; its per-part timings are
printed (the embedding part is the cache lookup of 200,000 texts).

dictionary: on the same 100,000 difference vectors, the top-k SAE against scikit-learn's
MiniBatchDictionaryLearning (OMP codes, same k): fit time, held-out share of variance
reconstructed (each method coding new vectors its own way: the SAE's encoder, OMP), and
held-out log-loss of a Davidson model on the codes (train/test split by prompt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _explain(src: Path, out: Path, *args: str) -> tuple[float, dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", "from prefkit.cli import main; main()", "explain", str(src),
         "--out", str(out), "--json", *args],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    out = json.loads(p.stdout)
    # CPU seconds (user + sys) of the command: less sensitive than wall time to a loaded machine
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"  command CPU time (user + sys): {cpu:.1f} s", flush=True)
    out["bench_cpu_s"] = cpu
    return wall, out


def features(size: int, work: Path) -> dict[str, Any]:
    from prefkit.io import save
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    sim = simulate("planted", size=size, seed=11)
    src = save(sim.tables[Kind.COMPARISONS], work / "planted.parquet")
    wall, summary = _explain(src, work / "out", "--directions", "0")
    print(f"prefkit explain --directions 0, {size} pairs: {wall:.1f} s wall", flush=True)
    print(f"  parts: {summary['timings_s']}", flush=True)
    # the competitor pipeline, same data, this process
    from threadpoolctl import threadpool_limits

    from prefkit.explain.data import votes_from_table
    from prefkit.reward.features import response_features

    v = votes_from_table(sim.tables[Kind.COMPARISONS])
    t0 = time.perf_counter()
    p, a, b = v.prompt.to_pylist(), v.a.to_pylist(), v.b.to_pylist()
    xa, _ = response_features(p, a)
    xb, _ = response_features(p, b)
    t_feat = time.perf_counter() - t0
    print(f"reward.response_features (per response): {t_feat:.1f} s", flush=True)
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import GroupKFold

    dec = v.y[:, 2] == 0
    d = xa - xb
    sd = np.vstack([xa, xb]).std(axis=0)
    keep = sd > 0
    x = (d[:, keep] / sd[keep])[dec]
    yy = v.y[dec, 0]
    t0 = time.perf_counter()
    folds = list(GroupKFold(5).split(x, yy, v.group[dec]))
    with threadpool_limits(1):
        LogisticRegressionCV(
            Cs=10, cv=folds, l1_ratios=[1.0], solver="liblinear", fit_intercept=False,
            max_iter=1000, tol=1e-4,
        ).fit(x, yy)  # fmt: skip
    t_lr = time.perf_counter() - t0
    print(
        f"scikit-learn LogisticRegressionCV (L1, liblinear, 5 grouped folds x 10 C): {t_lr:.1f} s"
    )
    ours = summary["timings_s"]["features"] + summary["timings_s"]["effects"]
    print(
        f"explain features + effects {ours:.1f} s (incl. 200 bootstrap fits, 100 stability "
        f"fits) vs features + LogisticRegressionCV {t_feat + t_lr:.1f} s: "
        f"{(t_feat + t_lr) / ours:.2f}x"
    )
    return {
        "pairs": size,
        "command_wall_s": wall,
        "command_cpu_s": summary["bench_cpu_s"],
        "parts_s": summary["timings_s"],
        "competitor_features_s": t_feat,
        "competitor_lrcv_s": t_lr,
    }


def _pool_table(n_votes: int, pool_size: int, seed: int) -> tuple[Any, Any]:
    """(pool simulation, a comparisons table of `n_votes` votes on within-prompt pairs of the
    pool's responses, drawn from the planted Davidson model)."""
    import pyarrow as pa

    from prefkit.explain.features import text_features
    from prefkit.schema import Kind
    from prefkit.simulate import simulate
    from prefkit.simulate.personas import PLANTED

    pool = simulate("planted", size=pool_size, seed=seed)
    t = pool.tables[Kind.COMPARISONS].to_pylist()
    by_prompt: dict[str, list[tuple[Any, Any]]] = {}
    for r in t:
        for side in ("response_a", "response_b"):
            by_prompt.setdefault(r["prompt_id"], [])
            key = r[side][0]["content"]
            if all(x[1][0]["content"] != key for x in by_prompt[r["prompt_id"]]):
                by_prompt[r["prompt_id"]].append((r, r[side]))
    prompts = [k for k, v in by_prompt.items() if len(v) >= 2]
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_votes):
        pid = prompts[int(rng.integers(len(prompts)))]
        cand = by_prompt[pid]
        ia, ib = rng.choice(len(cand), size=2, replace=False)
        base = cand[ia][0]
        rows.append(
            {
                "id": f"pool-{i:06d}", "prompt": base["prompt"], "prompt_id": pid,
                "annotator": f"ann-{int(rng.integers(40)):02d}", "source": "bench:pool",
                "response_a": cand[ia][1], "response_b": cand[ib][1], "outcome": "a",
            }
        )  # fmt: skip
    tab = pa.Table.from_pylist(rows)
    from prefkit.audit.frame import joined_text

    pr = joined_text(tab.column("prompt"))
    xa, names = text_features(pr, joined_text(tab.column("response_a")))
    xb, _ = text_features(pr, joined_text(tab.column("response_b")))
    eta = sum(w * (xa[:, names.index(f)] - xb[:, names.index(f)]) for f, w in PLANTED.items())
    ea, eb, nu = np.exp(eta / 2), np.exp(-eta / 2), 0.25
    u = rng.random(n_votes)
    z = ea + eb + nu
    out = np.where(u < ea / z, "a", np.where(u < (ea + eb) / z, "b", "tie"))
    tab = tab.set_column(tab.column_names.index("outcome"), "outcome", pa.array(out.tolist()))
    from prefkit.schema import conform

    return pool, conform(tab, Kind.COMPARISONS)


def directions(n_votes: int, pool_size: int, work: Path, cache: Path) -> dict[str, Any]:
    from prefkit.explain.data import votes_from_table
    from prefkit.explain.directions import embed_pairs
    from prefkit.io import save
    from prefkit.schema import Kind

    pool, table = _pool_table(n_votes, pool_size, 12)
    v = votes_from_table(pool.tables[Kind.COMPARISONS])
    t0 = time.perf_counter()
    _, _, st = embed_pairs(v.prompt, v.a, v.b, cache)
    print(
        f"cache filled: {st.n_texts} pool texts, {st.cache_hits} already cached, "
        f"{time.perf_counter() - t0:.0f} s (not timed below)",
        flush=True,
    )
    src = save(table, work / "pool100k.parquet")
    wall, summary = _explain(src, work / "out-dir", "--cache-dir", str(cache))
    d = summary["directions"]
    print(f"prefkit explain (defaults, cached embeddings), {n_votes} pairs: {wall:.1f} s wall")
    print(f"  parts: {summary['timings_s']}")
    print(
        f"  directions: {d['active']} active, {d['embeddings_cached']} of {2 * n_votes} "
        f"embeddings from the cache, dictionary {d['seconds_dictionary']:.1f} s, cache lookup "
        f"{d['seconds_embed']:.1f} s"
    )
    return {"pairs": n_votes, "command_wall_s": wall, "command_cpu_s": summary["bench_cpu_s"],
            "parts_s": summary["timings_s"],
            "directions": {k: d[k] for k in ("active", "embeddings_cached",
                                             "seconds_dictionary", "seconds_embed",
                                             "explained_variance")}}  # fmt: skip


def dictionary(n_votes: int, pool_size: int, cache: Path) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from prefkit.explain import model as M
    from prefkit.explain.data import votes_from_table
    from prefkit.explain.directions import embed_pairs, learn

    _, table = _pool_table(n_votes, pool_size, 12)
    v = votes_from_table(table)
    ea, eb, st = embed_pairs(v.prompt, v.a, v.b, cache)
    if st.cache_hits < st.n_texts:
        print(f"note: {st.n_texts - st.cache_hits} texts were not cached", flush=True)
    d = (ea - eb).astype(np.float64)
    rng = np.random.default_rng(0)
    test = M.group_folds(v.group, 5, rng) == 0
    out: dict[str, Any] = {}
    for method in ("sae", "dictionary"):
        t0 = time.perf_counter()
        dic = learn(d[~test], 32, 4, method, seed=0)
        secs = time.perf_counter() - t0
        codes_te = dic.encode(d[test])  # each method's own coding rule
        resid = float(((d[test] - codes_te @ dic.atoms) ** 2).sum())
        total = float(((d[test] - d[test].mean(axis=0)) ** 2).sum())
        sd = dic.codes.std(axis=0)
        ok = sd > 0
        with threadpool_limits(1):
            fit = M.fit(dic.codes[:, ok] / sd[ok], v.y[~test])
            ll = M.nll_of(codes_te[:, ok] / sd[ok], v.y[test], fit.model, fit.beta, fit.tau)
        out[method] = {
            "fit_s": secs,
            "train_explained": dic.explained,
            "test_explained": 1 - resid / total,
            "test_log_loss": ll / float(v.y[test].sum()),
        }
        print(f"{method:10s} fit {secs:6.1f} s  explained train {dic.explained:.3f} test "
              f"{1 - resid / total:.3f}  held-out log-loss {out[method]['test_log_loss']:.4f}",
              flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("part", choices=["features", "directions", "dictionary"])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--pool", type=int, default=3000)
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "prefkit-bench-emb"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.part == "features":
            res = features(args.size, work)
        elif args.part == "directions":
            res = directions(args.size, args.pool, work, Path(args.cache_dir))
        else:
            res = dictionary(args.size, args.pool, Path(args.cache_dir))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
