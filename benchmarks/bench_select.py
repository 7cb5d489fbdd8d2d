"""`prefkit select` (issue 24): does selection pay, and how fast is it?

- `train`: a feature reward model (`prefkit.reward.train.fit_features`) trained on the 25%
  `select --for train` keeps (default criteria: audit, pairs, margin, agreement, diversity,
  balance; with `pairs` each kept row carries its pair's merged votes) vs a random 25% of the
  rows vs all rows, held-out accuracy (prompt-grouped 80/20 split per seed; truth: the
  simulator's latent quality on `noisy`, the held-out labels on HH harmless, the majority of
  the three annotators on PandaLM). Mean over seeds with a t interval, the paired difference
  selected − random with its t interval, the paired all − random (what four times the rows
  buy the same model), and the distinct pairs each quarter reaches.
- `labels`: what clean labels can buy that reward model on `noisy` (a random 25% with the
  recorded labels vs with every label set to the latent truth): the ceiling of any selection
  that only removes wrong labels.
- `arena`: votes until the BT fit's Spearman correlation with the true model order reaches
  0.9 on the `arena` scenario, active (`prefkit.select.active`) vs uniform assignment, over
  seeds, both arms on the same vote grid up to `--run-to`: the first crossing, the votes
  from which it stays above, and the crossing of the mean curve; ratios of mean votes
  (uniform / active) with bootstrap intervals.
- `ceiling`: how much any assignment can save on `arena` to first order (the best fixed
  allocation of votes over model pairs, with the true strengths known, against uniform).
- `oracle`: the empirical check of that ceiling: the `arena` count with battles drawn from
  that best fixed allocation (`--ceiling-votes` sets its operating point) vs uniform.
- `curve`: a feature reward model trained from scratch, labels added 50 at a time by the
  information a label adds about the model (`select`'s criterion for text pairs), by pure
  outcome uncertainty, or at random (`noisy` scenario), held-out accuracy vs labels.
- `speed`: `prefkit select --for train` choosing 10k of 1M pairs with cached prompt embeddings
  (whole command, subprocess), with the k-NN graph by faiss vs exact numpy on the same pool.

    python -m benchmarks.bench_select [--only train,labels,arena,oracle,ceiling,curve,speed] [--seeds 5]
        [--sim-size 6000] [--random-draws 5] [--arena-seeds 20] [--run-to 600] [--rows 1000000] [--keep 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
HH = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"
PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"


def _t_interval(x: list[float]) -> list[float]:
    from scipy.stats import t

    a = np.asarray(x, dtype=np.float64)
    if a.size < 2:
        return [float(a.mean()), float(a.mean())]
    h = float(t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))
    return [float(a.mean() - h), float(a.mean() + h)]


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def bench_train(
    seeds: int, sim_size: int, datasets: list[str], cache: str, random_draws: int
) -> None:
    import prefkit
    from prefkit.reward.train import split_by_prompt
    from prefkit.select.evaluate import train_subset_accuracy
    from prefkit.simulate import simulate

    for name in datasets:
        runs = []
        for s in range(seeds):
            t0 = time.perf_counter()
            if name == "noisy":
                sim = simulate("noisy", size=sim_size, seed=s)
                table = sim.tables[next(iter(sim.tables))]
            elif name == "hh":
                table = prefkit.read(HH).table
            else:
                table = prefkit.read(PANDALM).table
            train, test = split_by_prompt(table, val=0.2, seed=s)
            r = train_subset_accuracy(
                train, test, 0.25, s, cache_dir=cache, random_draws=random_draws
            )
            r["seconds"] = round(time.perf_counter() - t0, 1)
            runs.append(r)
            _emit({"bench": "train", "data": name} | r)
        out: dict[str, Any] = {"bench": "train_summary", "data": name, "seeds": seeds}
        for side in ("selected", "random", "all"):
            v = [r[side] for r in runs]
            out[side] = {"mean": float(np.mean(v)), "ci95": _t_interval(v)}
        diff = [r["selected"] - r["random"] for r in runs]
        out["selected_minus_random"] = {"mean": float(np.mean(diff)), "ci95": _t_interval(diff)}
        # the proper test is the paired one (same split and test set per seed): the interval
        # of the per-seed difference above 0; the unpaired flag compares the two intervals
        out["selection_beats_random_paired"] = bool(out["selected_minus_random"]["ci95"][0] > 0)
        out["selection_beats_random_outside_intervals"] = bool(
            out["selected"]["ci95"][0] > out["random"]["ci95"][1]
        )
        # what four times the rows buy the same model (all − random, paired): the room any
        # selection of a quarter has unless it beats training on every row
        alld = [r["all"] - r["random"] for r in runs]
        out["all_minus_random"] = {"mean": float(np.mean(alld)), "ci95": _t_interval(alld)}
        out["distinct_pairs_mean"] = {
            side: float(np.mean([r["distinct_pairs"][side] for r in runs]))
            for side in ("selected", "random")
        }
        out["random_draws_per_seed"] = random_draws
        _emit(out)


def _ratio_ci(u: np.ndarray, a: np.ndarray, seeds: int) -> list[float]:
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(2000):
        i = rng.integers(0, seeds, seeds)
        boots.append(u[i].mean() / a[i].mean())
    return [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]


def bench_labels(seeds: int, sim_size: int, draws: int) -> None:
    """How much clean labels can buy the feature reward model on `noisy` (the ceiling of any
    selection that only removes wrong labels): a random 25% with its recorded labels vs the
    same kind of draw with every label replaced by the latent truth (ties kept), and all rows
    both ways; `draws` random draws per seed, paired interval over seeds."""
    import dataclasses

    from prefkit.reward.train import fit_features, split_by_prompt, usable
    from prefkit.select.evaluate import _truth_of, feature_split
    from prefkit.simulate import simulate

    diffs = []
    for s in range(seeds):
        sim = simulate("noisy", size=sim_size, seed=s)
        train, test = split_by_prompt(sim.tables[next(iter(sim.tables))], val=0.2, seed=s)
        p, xa, xb, ta, tb, truth = feature_split(train, test)
        true_train = _truth_of(train)
        ok = truth != 0.5

        def acc(rows: np.ndarray, clean: bool, p: Any = p, xa: Any = xa, xb: Any = xb,
                ta: Any = ta, tb: Any = tb, truth: Any = truth, ok: Any = ok,
                true_train: Any = true_train, s: int = s) -> float:  # fmt: skip
            sub = p.take(rows)
            if clean:
                y = true_train[rows]
                sub = dataclasses.replace(sub, y=np.where(y == 0.5, sub.y, y))
            u = usable(sub)
            m = fit_features(sub.take(u), seed=s, features=(xa[rows][u], xb[rows][u])).model
            sc = ((ta - m.mean) / m.std - (tb - m.mean) / m.std) @ m.beta
            return float(np.mean((sc[ok] > 0) == (truth[ok] > 0.5)))

        rng = np.random.default_rng([s, 3])
        k = round(0.25 * train.num_rows)
        noisy = [acc(np.sort(rng.choice(train.num_rows, k, replace=False)), False)
                 for _ in range(draws)]  # fmt: skip
        clean = [acc(np.sort(rng.choice(train.num_rows, k, replace=False)), True)
                 for _ in range(draws)]  # fmt: skip
        every = np.arange(train.num_rows)
        r = {"random_noisy": float(np.mean(noisy)), "random_clean_labels": float(np.mean(clean)),
             "all_noisy": acc(every, False), "all_clean_labels": acc(every, True)}  # fmt: skip
        diffs.append(r["random_clean_labels"] - r["random_noisy"])
        _emit({"bench": "labels", "seed": s, **r})
    _emit({"bench": "labels_summary", "seeds": seeds, "draws": draws,
           "clean_minus_noisy": {"mean": float(np.mean(diffs)), "ci95": _t_interval(diffs)}})  # fmt: skip


def bench_arena(
    seeds: int,
    target: float,
    batch: int,
    run_to: int,
    arms: tuple[str, ...] = ("uniform", "active"),
    design_votes: int = 400,
) -> None:
    """Both arms vote to `run_to` on the same grid (a refit every `batch` votes); per seed:
    the first crossing of the target, and the votes from which Spearman stays at or above it
    up to `run_to` (not reached: counted as `run_to` + `batch`, and said); across seeds, the
    crossing of the mean Spearman curve. Arm `oracle`: battles drawn from the best fixed
    allocation with the true strengths known (`ceiling`'s design at `design_votes`), the
    empirical check of the ceiling."""
    from prefkit.select.evaluate import arena_votes_to_target
    from prefkit.simulate import simulate

    res: dict[str, dict[str, list[float]]] = {p: {"first": [], "sustained": []} for p in arms}
    curves: dict[str, list[list[float]]] = {p: [] for p in arms}
    censored = dict.fromkeys(arms, 0)
    for s in range(seeds):
        for arm in arms:
            kw: dict[str, Any] = {}
            policy = arm
            if arm == "oracle":
                bt = simulate("arena", size=200, seed=s, text=False).truth["model_bt_strength"]
                th = np.array([bt[m] for m in sorted(bt)])
                kw["pair_weights"] = _design_ceiling(th, design_votes)[1]
                policy = "fixed"
            r = arena_votes_to_target(s, policy, target=target, batch=batch, run_to=run_to, **kw)
            first = r["votes"] if r["reached"] else run_to + batch
            sus = r["sustained_votes"]
            censored[arm] += int(sus is None)
            res[arm]["first"].append(float(first))
            res[arm]["sustained"].append(float(run_to + batch if sus is None else sus))
            curves[arm].append(r.pop("curve"))
            _emit({"bench": "arena", "arm": arm, **r})
    out: dict[str, Any] = {"bench": "arena_summary", "seeds": seeds, "target_spearman": target,
                           "batch": batch, "run_to": run_to, "arms": list(arms),
                           "not_sustained_by_run_to": censored}  # fmt: skip
    if "oracle" in arms:
        out["oracle_design_votes"] = design_votes
    for kind in ("first", "sustained"):
        u = np.array(res["uniform"][kind])
        out[kind] = {
            "uniform_mean_votes": float(u.mean()),
            "uniform_median_votes": float(np.median(u)),
        }
        for arm in arms[1:]:
            a = np.array(res[arm][kind])
            out[kind] |= {
                f"{arm}_mean_votes": float(a.mean()), f"{arm}_median_votes": float(np.median(a)),
                f"ratio_uniform_over_{arm}": float(u.mean() / a.mean()),
                f"ratio_uniform_over_{arm}_ci95": _ratio_ci(u, a, seeds),
            }  # fmt: skip
    grid = [(n + 1) * batch for n in range(run_to // batch)]
    cross = {}
    for arm, cs in curves.items():
        m = np.array(cs).mean(axis=0)
        hit = np.flatnonzero(m >= target)
        cross[arm] = grid[int(hit[0])] if hit.size else None
        out[f"{arm}_mean_spearman"] = {str(v): round(float(m[v // batch - 1]), 4)
                                       for v in (100, 200, 300, 400, 600) if v <= run_to}  # fmt: skip
    out["mean_curve_crossing"] = cross
    _emit(out)


def bench_ceiling(seeds: int, votes: int) -> None:
    """How much any assignment can save on `arena`, to first order: with the true strengths
    known, the expected number of misordered model pairs after N votes is
    sum_ab Phi(-|d_ab| / sd_ab); around uniform assignment's operating point it changes by
    sum_ab omega_ab dVar_ab with omega = dPhi/dVar. Var scales as 1/N for every allocation of
    votes over pairs, so the votes the best fixed allocation needs to match uniform's
    objective are N / (objective(uniform) / min objective). An adaptive policy ends with some
    allocation, so (to first order) it cannot save more. The optimum over allocations is
    found by the multiplicative algorithm for A-type optimal designs."""
    from prefkit.simulate import simulate

    ratios = []
    for s in range(seeds):
        th = np.array(list(simulate("arena", size=200, seed=s, text=False)
                           .truth["model_bt_strength"].values()))  # fmt: skip
        ratio, lam = _design_ceiling(th, votes)
        ratios.append(ratio)
        gap = np.abs(th[:, None] - th[None, :])[np.triu_indices(th.size, 1)]
        _emit({"bench": "ceiling", "seed": s, "votes": votes, "saving_factor": round(ratio, 4),
               "optimal_top_pair_share": round(float(lam.max()), 4),
               "mean_gap_optimal": round(float((lam * gap).sum()), 3),
               "mean_gap_uniform": round(float(gap.mean()), 3)})  # fmt: skip
    _emit({"bench": "ceiling_summary", "seeds": seeds, "votes": votes,
           "saving_factor_mean": float(np.mean(ratios)), "saving_factor_max": float(np.max(ratios))})  # fmt: skip


def _design_ceiling(th: np.ndarray, votes: int, iters: int = 3000) -> tuple[float, np.ndarray]:
    """(objective(uniform) / objective(best allocation), the best allocation over pairs)."""
    from scipy.stats import norm

    k = th.size
    ca, cb = np.triu_indices(k, 1)
    p = 1 / (1 + np.exp(-(th[ca] - th[cb])))
    w = p * (1 - p)
    centre = np.ones((k, k)) / k  # gauge: strengths centred

    def cov(lam: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.inv(_laplacian(k, ca, cb, votes * lam * w) + centre))

    def var(c: np.ndarray) -> np.ndarray:
        return np.asarray(c[ca, ca] + c[cb, cb] - 2 * c[ca, cb])

    uni = np.full(ca.size, 1.0 / ca.size)
    v0 = var(cov(uni))
    x = np.abs(th[ca] - th[cb]) / np.sqrt(v0)
    omega = norm.pdf(x) * x / (2 * v0)  # d Phi(-x) / d Var at uniform's operating point
    wm = _laplacian(k, ca, cb, omega)
    lam = uni.copy()
    for _ in range(iters):
        c = cov(lam)
        m = c @ wm @ c
        g = w * var(m)
        lam = lam * np.sqrt(g / float(lam @ g))
        lam /= lam.sum()
    ratio = float((omega * v0).sum() / (omega * var(cov(lam))).sum())
    return ratio, lam


def _laplacian(k: int, ca: np.ndarray, cb: np.ndarray, wt: np.ndarray) -> np.ndarray:
    h = np.zeros((k, k))
    np.add.at(h, (ca, ca), wt)
    np.add.at(h, (cb, cb), wt)
    np.add.at(h, (ca, cb), -wt)
    np.add.at(h, (cb, ca), -wt)
    return h


def bench_curve(seeds: int, sim_size: int) -> None:
    from prefkit.reward.train import split_by_prompt
    from prefkit.select.evaluate import _truth_of, feature_diffs, rm_label_curve
    from prefkit.simulate import simulate

    curves: dict[str, list[list[float]]] = {"active": [], "uncertainty": [], "random": []}
    labels: list[int] = []
    for s in range(seeds):
        sim = simulate("noisy", size=sim_size, seed=s)
        table = sim.tables[next(iter(sim.tables))]
        train, test = split_by_prompt(table, val=0.2, seed=s)
        d, y, _ = feature_diffs(train)
        dt, _, _ = feature_diffs(test)
        truth = _truth_of(test)
        for policy in curves:
            c = rm_label_curve(d, y, dt, truth, s, policy)
            curves[policy].append([p["accuracy"] for p in c])
            labels = [int(p["labels"]) for p in c]
            _emit({"bench": "curve", "seed": s, "policy": policy, "curve": c})
    out: dict[str, Any] = {"bench": "curve_summary", "seeds": seeds, "labels": labels}
    for policy, cs in curves.items():
        m = np.array(cs)
        out[policy] = [round(float(x), 4) for x in m.mean(axis=0)]
    diff = np.array(curves["active"]) - np.array(curves["random"])
    out["active_minus_random_ci95"] = [[round(v, 4) for v in _t_interval(list(diff[:, j]))]
                                       for j in range(diff.shape[1])]  # fmt: skip
    _emit(out)


def _speed_input(rows: int, prompts: int, work: Path) -> tuple[Path, Path, Path]:
    """1M comparisons (short texts, two sources, reward_a/reward_b as `rm score` writes),
    their prompts' embeddings (clustered random unit vectors standing in for cached MiniLM
    vectors),
    and an audit findings file flagging 2% of the rows."""
    import pyarrow.parquet as pq

    from prefkit.schema import Kind
    from prefkit.select.criteria import save_embeddings
    from prefkit.simulate import tables as T

    rng = np.random.default_rng(0)
    pidx = rng.integers(0, prompts, rows)
    ptext = [f"question {i} about topic {i % 997}" for i in range(prompts)]
    ids = [f"r{i:07d}" for i in range(rows)]
    cols: dict[str, Any] = {
        "id": ids,
        "prompt": T.messages([ptext[i] for i in pidx.tolist()], "user"),
        "prompt_id": [f"p{i:06d}" for i in pidx.tolist()],
        "source": np.where(rng.random(rows) < 0.7, "web", "forum").tolist(),
        "response_a": T.messages(["answer one"] * rows, "assistant"),
        "response_b": T.messages(["answer two"] * rows, "assistant"),
        "outcome": np.where(rng.random(rows) < 0.5, "a", "b").tolist(),
    }
    t = T.table(Kind.COMPARISONS, cols, rows)
    t = t.append_column("reward_a", pa.array(rng.normal(size=rows)))
    t = t.append_column("reward_b", pa.array(rng.normal(size=rows)))
    src = work / "pairs.parquet"
    pq.write_table(t, src)
    emb = work / "prompt_embeddings.parquet"
    # clustered like real prompt embeddings: topic centres plus per-prompt noise
    centres = rng.normal(size=(max(1, prompts // 100), 384)).astype(np.float32)
    v = centres[rng.integers(0, centres.shape[0], prompts)]
    v += 0.6 * rng.normal(size=v.shape).astype(np.float32) / np.sqrt(1.0)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    save_embeddings(emb, [f"p{i:06d}" for i in range(prompts)], v)
    flagged = rng.choice(rows, size=rows // 50, replace=False)
    fnd = pa.table({
        "row_id": [ids[i] for i in flagged.tolist()], "check": ["noise"] * flagged.size,
        "issue": ["noisy_label"] * flagged.size, "severity": ["warning"] * flagged.size,
        "score": [0.9] * flagged.size, "group": [None] * flagged.size, "detail": [""] * flagged.size,
    })  # fmt: skip
    fpath = work / "findings.parquet"
    pq.write_table(fnd, fpath)
    return src, emb, fpath


def bench_speed(rows: int, keep: int, prompts: int) -> None:
    from prefkit.select.diversity import knn_graph

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        t0 = time.perf_counter()
        src, emb, fnd = _speed_input(rows, prompts, work)
        gen = time.perf_counter() - t0
        out = work / "sub.parquet"
        cmd = [sys.executable, "-m", "prefkit.cli", "select", str(src), str(out),
               "--budget", str(keep), "--for", "train", "--findings", str(fnd),
               "--embeddings", str(emb), "--by", "audit,margin,diversity,balance"]  # fmt: skip
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        s = json.loads(Path(str(out) + ".select.json").read_text())
        # the k-NN graph of the diversity pool: faiss IVF (what select uses) vs exact search
        # (faiss IndexFlatIP, brute force with BLAS), and the IVF graph's recall of the exact
        import faiss
        import pyarrow.parquet as pq

        from prefkit.select.criteria import load_embeddings
        from prefkit.select.diversity import normalise

        pool = int(s["criteria"]["diversity"]["pool"])
        pid = pq.read_table(src, columns=["prompt_id"]).column("prompt_id").to_pylist()[:pool]
        x = normalise(load_embeddings(emb, pid))
        t0 = time.perf_counter()
        g = knn_graph(x)
        t_faiss = time.perf_counter() - t0
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
        _, ex = flat.search(x, 11)
        t_exact = time.perf_counter() - t0
        recall = float(np.mean([len(set(g.idx[i]) & (set(ex[i]) - {i})) / g.idx.shape[1]
                                for i in range(pool)]))  # fmt: skip
        _emit({
            "bench": "speed", "rows": rows, "keep": keep, "distinct_prompts": prompts,
            "command_seconds": round(wall, 1), "input_generation_seconds": round(gen, 1),
            "command_peak_rss_mb": round(peak_mb), "kept": s["kept"], "pool": pool,
            "neighbours": s["criteria"]["diversity"]["neighbours"],
            "knn_faiss_ivf_seconds": round(t_faiss, 2), "knn_exact_flat_seconds": round(t_exact, 2),
            "faiss_speedup": round(t_exact / t_faiss, 2), "faiss_recall_at_10": round(recall, 3),
            "command": " ".join(cmd[1:]),
        })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="train,labels,arena,oracle,ceiling,curve,speed")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sim-size", type=int, default=6000)
    ap.add_argument("--datasets", default="noisy,hh,pandalm")
    ap.add_argument("--random-draws", type=int, default=5)
    ap.add_argument("--arena-seeds", type=int, default=20)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--run-to", type=int, default=600)
    ap.add_argument("--ceiling-votes", type=int, default=400)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=int, default=10_000)
    ap.add_argument("--prompts", type=int, default=200_000)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "prefkit-select-cache"))
    a = ap.parse_args()
    only = set(a.only.split(","))
    _emit({"bench": "machine", "cpus": os.cpu_count(), "python": platform.python_version(),
           "load": os.getloadavg()})  # fmt: skip
    if "train" in only:
        bench_train(a.seeds, a.sim_size, a.datasets.split(","), a.cache, a.random_draws)
    if "labels" in only:
        bench_labels(a.seeds, a.sim_size, a.random_draws)
    if "arena" in only:
        bench_arena(a.arena_seeds, a.target, a.batch, a.run_to)
    if "oracle" in only:
        bench_arena(a.arena_seeds, a.target, a.batch, a.run_to, ("uniform", "oracle"),
                    a.ceiling_votes)  # fmt: skip
    if "curve" in only:
        bench_curve(a.seeds, a.sim_size)
    if "ceiling" in only:
        bench_ceiling(a.arena_seeds, a.ceiling_votes)
    if "speed" in only:
        bench_speed(a.rows, a.keep, min(a.prompts, a.rows))
    _emit({"bench": "done", "load": os.getloadavg()})


if __name__ == "__main__":
    main()
