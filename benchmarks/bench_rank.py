"""Rank speed and memory, prefkit side by side with choix, crowd-kit, evalica and a
scikit-learn logistic regression on the Arena design matrix, in one run.

    .venv/bin/python benchmarks/bench_rank.py            # all scenarios (~10 min loaded)
    .venv/bin/python benchmarks/bench_rank.py --quick    # small sizes, seconds

Every side runs in its own subprocess on the same simulated battles (Davidson-generated,
~20% ties, regenerated from one seed in each subprocess) and reports the wall time of its
fit and its own peak RSS (VmHWM). Timed: the estimator call on its natural input (choix: a
list of (winner, loser); crowd-kit: a DataFrame; evalica: arrays; sklearn: a sparse design
matrix with every battle twice as in Arena's notebook; prefkit: battle arrays -> counts ->
Newton). A competitor whose dense K x K structures would need more than --mem-limit GB is
skipped with its estimate printed. Estimates are compared (max |diff| of centred
log-strengths) against prefkit fitted with the same tie convention: choix and crowd-kit get
decisive battles only (no ties) and are compared with ties dropped; evalica (tie = half) and
sklearn (Arena's duplicated rows) with ties as half a win.

End to end (`--e2e`, run after the fit-only table; `--e2e-only` skips the latter): what a user
runs, as whole processes on a Parquet file on disk with columns `model_a, model_b, outcome`
(a/b/tie), wall time from process start to exit, CPU time (user + sys) and peak RSS
(`/usr/bin/time`), at 200 x 1M,
10k x 250k and 100k x 1M:

- prefkit: `prefkit rank FILE --out DIR` (defaults: BT, ties half, `--ci auto`, 1,000 rounds;
  writes leaderboard.csv and index.html, the table to stdout) and the same with `--ci none`;
- evalica: read the file (pyarrow), `evalica.bradley_terry`, then `evalica.bootstrap` with its
  own resampling (percentile intervals, 1,000 resamples), write a CSV;
- sklearn: Chatbot Arena's recipe: read with pandas, `LogisticRegression` on the sparse
  design with every battle twice (a tie a win in one copy and a loss in the other), bootstrap
  by refitting on `battles.sample(frac=1, replace=True)` 1,000 times, percentile intervals,
  write a CSV.

A competitor whose 1,000 rounds would run past `--timeout` is timed with 0 and `--probe-rounds`
rounds instead and its 1,000-round time extrapolated linearly (marked "est.").
`--layout canonical` writes prefkit's canonical Parquet instead (for trees whose reader does
not yet detect the three-column layout).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SCENARIOS = {
    "50x1M": (50, 1_000_000),
    "10kx250k": (10_000, 250_000),
    "100kx1M": (100_000, 1_000_000),
}
QUICK = {"50x100k": (50, 100_000), "2kx50k": (2_000, 50_000), "20kx200k": (20_000, 200_000)}
SIDES = ("prefkit", "choix", "crowdkit", "evalica", "sklearn", "sklearn-tight")
DENSE_BYTES = {"choix": 3 * 8, "crowdkit": 4 * 8, "evalica": 3 * 8}  # per K^2 cell, rough
PRIOR_BIG = 0.1  # the prior prefkit picks automatically where some items never win or lose


def data(k: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    th = rng.normal(0.0, 0.5, k)  # spread 0.5: at 10k items every item wins and loses
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    d = th[a] - th[b]
    nu = 0.6
    z = np.exp(d / 2) + np.exp(-d / 2) + nu
    u = rng.random(n)
    pa, pt = np.exp(d / 2) / z, nu / z
    out = np.where(u < pa, 0, np.where(u < pa + pt, 2, 1))
    return a.astype(np.int64), b.astype(np.int64), out.astype(np.int64)


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _centre_log(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean()


def worker(side: str, k: int, n: int, ties: str, out_path: str, rounds: int) -> dict[str, Any]:
    a, b, o = data(k, n)
    prior = PRIOR_BIG if k >= 50_000 else None
    info: dict[str, Any] = {"side": side}
    if side == "prefkit":
        from prefkit.rank import bt
        from prefkit.rank.data import Battles, aggregate

        items = tuple(str(q) for q in range(k))
        bat = Battles(items, a, b, o, np.ones(n), np.arange(n, dtype=np.int64))
        t = time.perf_counter()
        c = aggregate(bat)
        p = bt.problem(c, bt.RankConfig(ties=ties, prior=prior))  # type: ignore[arg-type]
        f = bt.fit_problem(p)
        info["seconds"] = time.perf_counter() - t
        order = np.array([int(s) for s in f.items])
        est = np.full(k, np.nan)
        est[order] = f.theta
        info["prior"] = f.prior
        if rounds:
            from prefkit.rank import ci

            t = time.perf_counter()
            ci.bootstrap(p, f, rounds, rng=np.random.default_rng(0))
            info["bootstrap_seconds"] = time.perf_counter() - t
    elif side == "choix":
        import choix

        dec = o != 2
        pairs = list(zip(np.where(o[dec] == 0, a[dec], b[dec]).tolist(), np.where(o[dec] == 0, b[dec], a[dec]).tolist(), strict=True))  # fmt: skip
        t = time.perf_counter()
        est = _centre_log(choix.ilsr_pairwise(k, pairs, alpha=0.0, max_iter=1000))
        info["seconds"] = time.perf_counter() - t
    elif side == "crowdkit":
        import pandas as pd
        from crowdkit.aggregation import BradleyTerry

        dec = o != 2
        df = pd.DataFrame(
            {
                "worker": 0,
                "left": a[dec],
                "right": b[dec],
                "label": np.where(o[dec] == 0, a[dec], b[dec]),
            }
        )
        t = time.perf_counter()
        s = BradleyTerry(n_iter=200, tol=1e-10).fit(df).scores_
        info["seconds"] = time.perf_counter() - t
        est = np.full(k, np.nan)
        with np.errstate(divide="ignore"):
            est[s.index.to_numpy().astype(int)] = np.log(s.to_numpy())
        est[~np.isfinite(est)] = np.nan  # a zero score (an item without a win)
        info["zero_scores"] = int(np.isnan(est).sum())
    elif side == "evalica":
        import evalica

        w = np.array([evalica.Winner.X, evalica.Winner.Y, evalica.Winner.Draw], dtype=object)[o]
        t = time.perf_counter()
        r = evalica.bradley_terry(a.tolist(), b.tolist(), w.tolist())
        info["seconds"] = time.perf_counter() - t
        est = np.full(k, np.nan)
        est[r.scores.index.to_numpy().astype(int)] = np.log(r.scores.to_numpy())
        est = est - np.nanmean(est)
        info["iterations"] = int(r.iterations)
    elif side in ("sklearn", "sklearn-tight"):
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression

        # Arena's design: every battle twice; a tie is a win in the first copy, a loss in
        # the second (= half a win); one +1/-1 column per model, no intercept.
        rows = np.arange(2 * n)
        aa, bb = np.concatenate([a, a]), np.concatenate([b, b])
        x = sp.csr_matrix(
            (np.concatenate([np.ones(2 * n), -np.ones(2 * n)]), (np.concatenate([rows, rows]), np.concatenate([aa, bb]))),
            shape=(2 * n, k),
        )  # fmt: skip
        y = np.concatenate([(o == 0) | (o == 2), o == 0]).astype(int)
        tol = 1e-6 if side == "sklearn" else 1e-10  # Arena's setting / tight enough to agree
        c_inv = {"penalty": None} if prior is None else {"C": 1.0 / (2 * prior)}
        lr = LogisticRegression(fit_intercept=False, tol=tol, max_iter=5000, **c_inv)  # type: ignore[arg-type]
        t = time.perf_counter()
        lr.fit(x, y)
        info["seconds"] = time.perf_counter() - t
        est = lr.coef_[0] if prior is not None else _centre_log(lr.coef_[0])
        info["iterations"] = int(lr.n_iter_[0])
        if rounds and side == "sklearn":
            # Arena bootstraps by refitting on resampled battles: time a few rounds
            rng = np.random.default_rng(0)
            r_small = min(rounds, 5)
            t = time.perf_counter()
            for _ in range(r_small):
                idx = rng.integers(0, n, n)
                ii = np.concatenate([idx, idx + n])
                lr.fit(x[ii], y[ii])
            info["bootstrap_seconds_per_round"] = (time.perf_counter() - t) / r_small
    else:
        raise SystemExit(f"unknown side {side}")
    np.save(out_path, est)
    info["peak_rss_mb"] = peak_rss_mb()
    return info


E2E = {"200x1M": (200, 1_000_000), "10kx250k": (10_000, 250_000), "100kx1M": (100_000, 1_000_000)}
E2E_QUICK = {"200x100k": (200, 100_000), "2kx50k": (2_000, 50_000)}
PREFKIT = [sys.executable, "-c", "from prefkit.cli import main; main()"]


def write_battles(path: Path, k: int, n: int, layout: str) -> None:
    """The benchmark's battles as Parquet: `model_a, model_b, outcome` (or canonical)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b, o = data(k, n)
    names = np.array([f"model-{q:06d}" for q in range(k)], dtype=object)
    outcome = np.array(["a", "b", "tie"], dtype=object)[o]
    if layout == "canonical":
        from prefkit.io import save
        from prefkit.schema import Kind
        from prefkit.simulate import tables as T

        cols = {"id": [str(q) for q in range(n)], "prompt_id": ["bench"] * n,
                "model_a": names[a].tolist(), "model_b": names[b].tolist(),
                "outcome": outcome.tolist()}  # fmt: skip
        save(T.table(Kind.COMPARISONS, cols, n), path, Kind.COMPARISONS)
        return
    pq.write_table(pa.table({"model_a": names[a], "model_b": names[b], "outcome": outcome}), path)


def e2e_worker(side: str, path: str, rounds: int, out_dir: str) -> None:
    """A competitor as a user would script it: read, fit, bootstrap, write a CSV."""
    import csv

    import pyarrow.parquet as pq

    out = Path(out_dir) / "scores.csv"
    if side == "evalica":
        import evalica

        t = pq.read_table(path)
        xs, ys = t.column("model_a").to_pylist(), t.column("model_b").to_pylist()
        code = {"a": evalica.Winner.X, "b": evalica.Winner.Y, "tie": evalica.Winner.Draw}
        ws = [code[v] for v in t.column("outcome").to_pylist()]
        if rounds:
            r = evalica.bootstrap(evalica.bradley_terry, xs, ys, ws, n_resamples=rounds,
                                  bootstrap_method="percentile", random_state=0)  # fmt: skip
            scores, low, high = r.result.scores, r.low, r.high
        else:
            scores = evalica.bradley_terry(xs, ys, ws).scores
            low = high = scores
        with out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["item", "score", "low", "high"])
            for m in scores.index:
                w.writerow([m, scores[m], low[m], high[m]])
        return
    if side == "sklearn":
        import pandas as pd
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression

        df = pd.read_parquet(path)
        models = pd.Index(pd.unique(df[["model_a", "model_b"]].to_numpy().ravel()))
        ia = models.get_indexer(df["model_a"]).astype(np.int64)
        ib = models.get_indexer(df["model_b"]).astype(np.int64)
        o = df["outcome"].to_numpy()
        n, k = len(df), len(models)

        def design(idx: np.ndarray) -> tuple[Any, np.ndarray]:
            # Arena: every battle twice; a tie is a win in one copy and a loss in the other
            aa, bb = np.concatenate([ia[idx], ia[idx]]), np.concatenate([ib[idx], ib[idx]])
            rows = np.arange(aa.size)
            x = sp.csr_matrix(
                (np.concatenate([np.ones(aa.size), -np.ones(aa.size)]),
                 (np.concatenate([rows, rows]), np.concatenate([aa, bb]))),
                shape=(aa.size, k),
            )  # fmt: skip
            oo = o[idx]
            y = np.concatenate([(oo == "a") | (oo == "tie"), oo == "a"]).astype(int)
            return x, y

        def fit(idx: np.ndarray) -> np.ndarray:
            x, y = design(idx)
            lr = LogisticRegression(fit_intercept=False, tol=1e-6, max_iter=1000)
            return np.asarray(400 / np.log(10) * lr.fit(x, y).coef_[0] + 1000)

        full = fit(np.arange(n))
        rng = np.random.default_rng(0)
        boot = np.array([fit(rng.integers(0, n, n)) for _ in range(rounds)]) if rounds else None
        low = np.percentile(boot, 2.5, axis=0) if boot is not None else full
        high = np.percentile(boot, 97.5, axis=0) if boot is not None else full
        pd.DataFrame({"item": models, "score": full, "low": low, "high": high}).to_csv(out)
        return
    raise SystemExit(f"unknown side {side}")


def timed(cmd: list[str], timeout: int) -> dict[str, Any]:
    """Wall time, CPU time (user + sys, all threads) and peak RSS of a whole process
    (`/usr/bin/time`)."""
    t = time.perf_counter()
    # its own process group, so that a timeout kills the measured process, not only `time`
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M %U %S", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"skipped": f"over the {timeout} s time limit"}
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    secs = time.perf_counter() - t
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-2:]
        return {"skipped": f"failed: {' | '.join(tail)[:300]}"}
    lines = res.stderr.strip().splitlines()
    ci = [ln.split(":", 1)[1].split("(")[0].strip() for ln in lines if ln.startswith("intervals:")]
    rss, user, sys_ = lines[-1].split()
    return {
        "seconds": secs,
        "cpu": float(user) + float(sys_),
        "peak_mb": int(rss) / 1024,
        "ci": ci[0] if ci else "",
    }


def e2e(scen: dict[str, tuple[int, int]], layout: str, timeout: int, probe: int,
        mem_limit: float, rounds: int) -> None:  # fmt: skip
    print(
        f"\n== end to end: whole processes on a Parquet file ({layout} layout), {rounds} rounds =="
    )
    for name, (k, n) in scen.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"battles-{name}.parquet"
            write_battles(path, k, n, layout)
            print(f"\n-- {name}: {k} items x {n} battles, {path.stat().st_size / 1e6:.1f} MB --")
            rows: list[tuple[str, dict[str, Any]]] = []
            for label, extra in (
                ("prefkit rank (default)", []),
                ("prefkit rank --ci none", ["--ci", "none"]),
            ):
                out = Path(tmp) / label.replace(" ", "_")
                cmd = [
                    *PREFKIT,
                    "rank",
                    str(path),
                    "--out",
                    str(out),
                    "--rounds",
                    str(rounds),
                    *extra,
                ]
                rows.append((label, timed(cmd, timeout)))
            for side in ("evalica", "sklearn"):
                if side == "evalica" and 3 * 8 * k * k / 1e9 > mem_limit:
                    need = 3 * 8 * k * k / 1e9
                    rows.append(
                        (
                            f"{side} (+ bootstrap)",
                            {
                                "skipped": f"out of memory: dense {k}x{k} matrices need ~{need:.0f} GB"
                            },
                        )
                    )
                    continue
                out = Path(tmp) / side
                out.mkdir()

                def cmd_for(
                    r: int, side: str = side, path: Path = path, out: Path = out
                ) -> list[str]:
                    return [sys.executable, __file__, "--e2e-worker", side, "--file", str(path),
                            "--rounds", str(r), "--out", str(out)]  # fmt: skip

                fit_only = timed(cmd_for(0), timeout)
                rows.append((f"{side} (fit only)", fit_only))
                if "seconds" not in fit_only:
                    rows.append((f"{side} (+ bootstrap)", {"skipped": "fit failed"}))
                    continue
                small = timed(cmd_for(probe), timeout)
                if "seconds" not in small:
                    rows.append((f"{side} (+ bootstrap)", small))
                    continue
                per = max(small["seconds"] - fit_only["seconds"], 0.0) / probe
                est = fit_only["seconds"] + per * rounds
                # scipy.stats.bootstrap (evalica's) materialises every resample at once:
                # rounds x battles indices, two object arrays, winners and weights
                need = 33 * rounds * n / 1e9 if side == "evalica" else 0.0
                if need > mem_limit:
                    small = dict(small, estimated=f"{probe} rounds took {small['seconds']:.1f} s;"
                                 f" 1,000 rounds need ~{need:.0f} GB (scipy.stats.bootstrap)")  # fmt: skip
                    rows.append((f"{side} (+ bootstrap)", dict(small, seconds=est)))
                    continue
                if est < 0.8 * timeout:
                    full = timed(cmd_for(rounds), timeout)
                    if "seconds" not in full:  # ran past the limit: report the limit
                        full = dict(small, seconds=max(est, float(timeout)),
                                    estimated=f"{full['skipped']}: a lower bound")  # fmt: skip
                    rows.append((f"{side} (+ bootstrap)", full))
                else:
                    rows.append(
                        (
                            f"{side} (+ bootstrap)",
                            {
                                "seconds": est,
                                "peak_mb": small["peak_mb"],
                                "estimated": f"{probe} rounds took {small['seconds']:.1f} s",
                            },
                        )
                    )
            best = rows[0][1].get("seconds", float("nan"))
            print(
                f"{'side':28s} {'seconds':>10s}      {'cpu s':>7s} {'peak MB':>8s} {'x prefkit':>10s}"
            )
            for label, info in rows:
                if "seconds" not in info:
                    print(f"{label:28s} skipped: {info['skipped']}")
                    continue
                est = " est." if "estimated" in info else ""
                note = (
                    f"  ({info['estimated']})"
                    if est
                    else (f"  (ci {info['ci']})" if info.get("ci") else "")
                )
                cpu = f"{info['cpu']:7.1f}" if "cpu" in info and not est else f"{'':7s}"
                print(
                    f"{label:28s} {info['seconds']:10.2f}{est:5s} {cpu} {info['peak_mb']:8.0f} {info['seconds'] / best:10.1f}{note}",
                    flush=True,
                )


def run_side(side: str, k: int, n: int, ties: str, rounds: int, timeout: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "est.npy")
        cmd = [sys.executable, __file__, "--worker", side, "--k", str(k), "--n", str(n), "--ties", ties, "--out", out, "--rounds", str(rounds)]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"side": side, "skipped": f"over the {timeout} s time limit"}
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["?"])[-1]
            return {"side": side, "skipped": f"failed: {tail[:200]}"}
        info: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        info["estimate"] = np.load(out)
        return info


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worker")
    ap.add_argument("--k", type=int)
    ap.add_argument("--n", type=int)
    ap.add_argument("--ties", default="half")
    ap.add_argument("--out")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--scenarios", default="")
    ap.add_argument("--timeout", type=int, default=400)
    ap.add_argument("--mem-limit", type=float, default=12.0, help="GB a competitor may use")
    ap.add_argument("--bootstrap-rounds", type=int, default=1000)
    ap.add_argument("--e2e", action="store_true", help="add the end-to-end table")
    ap.add_argument("--e2e-only", action="store_true", help="only the end-to-end table")
    ap.add_argument("--e2e-scenarios", default="")
    ap.add_argument("--e2e-worker")
    ap.add_argument("--file")
    ap.add_argument("--layout", default="plain", choices=("plain", "canonical"))
    ap.add_argument("--probe-rounds", type=int, default=5)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.k, args.n, args.ties, args.out, args.rounds)))
        return
    if args.e2e_worker:
        e2e_worker(args.e2e_worker, args.file, args.rounds, args.out)
        return
    if args.e2e_only:
        scen_e = E2E_QUICK if args.quick else E2E
        if args.e2e_scenarios:
            scen_e = {s: (E2E | E2E_QUICK)[s] for s in args.e2e_scenarios.split(",")}
        e2e(
            scen_e,
            args.layout,
            args.timeout,
            args.probe_rounds,
            args.mem_limit,
            args.bootstrap_rounds,
        )
        return
    scen = QUICK if args.quick else SCENARIOS
    if args.scenarios:
        scen = {s: (SCENARIOS | QUICK)[s] for s in args.scenarios.split(",")}
    sides = args.sides.split(",")
    print(
        f"bench_rank: {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    for name, (k, n) in scen.items():
        print(f"\n== {name}: {k} items x {n} battles ==")
        ours = {t: run_side("prefkit", k, n, t, 0, args.timeout) for t in ("half", "drop")}
        rows = []
        for side in sides:
            if side == "prefkit":
                rows.append(("prefkit (ties half)", ours["half"], None))
                rows.append(("prefkit (ties drop)", ours["drop"], None))
                continue
            need = DENSE_BYTES.get(side, 0) * k * k / 1e9
            if need > args.mem_limit:
                rows.append(
                    (
                        side,
                        {"skipped": f"out of memory: dense {k}x{k} structures need ~{need:.0f} GB"},
                        None,
                    )
                )
                continue
            ties = "drop" if side in ("choix", "crowdkit") else "half"
            rows.append((side, run_side(side, k, n, ties, 0, args.timeout), ours[ties]))
        best = ours["half"].get("seconds", float("nan"))
        print(f"{'side':24s} {'seconds':>9s} {'peak MB':>9s} {'x prefkit':>10s} {'max|diff|':>10s}")
        for label, info, ref in rows:
            if "skipped" in info:
                print(f"{label:24s} skipped: {info['skipped']}")
                continue
            diff = ""
            if ref is not None and "estimate" in ref:
                e, r = info["estimate"], ref["estimate"]
                m = np.isfinite(e) & np.isfinite(r)
                if m.any():
                    diff = f"{np.abs((e[m] - e[m].mean()) - (r[m] - r[m].mean())).max():.2e}"
            ratio = info["seconds"] / best if best else float("nan")
            print(
                f"{label:24s} {info['seconds']:9.3f} {info['peak_rss_mb']:9.0f} {ratio:10.1f} {diff:>10s}"
            )
    # bootstrap: 1000 rounds over 1M battles (50 items)
    k, n = (50, 100_000) if args.quick else (50, 1_000_000)
    print(f"\n== bootstrap: {args.bootstrap_rounds} rounds over {n} battles, {k} items ==")
    mine = run_side("prefkit", k, n, "half", args.bootstrap_rounds, args.timeout)
    if "bootstrap_seconds" in mine:
        print(
            f"prefkit: {mine['bootstrap_seconds']:.2f} s for {args.bootstrap_rounds} rounds (multinomial reweighting of the count table, batched Newton)"
        )
    if "sklearn" in sides:
        sk = run_side("sklearn", k, n, "half", args.bootstrap_rounds, args.timeout)
        if "bootstrap_seconds_per_round" in sk:
            per = sk["bootstrap_seconds_per_round"]
            tot = per * args.bootstrap_rounds
            print(
                f"sklearn refit on resampled battles (Arena): {per:.2f} s/round -> ~{tot:.0f} s for {args.bootstrap_rounds} rounds (extrapolated from 5); ratio {tot / mine.get('bootstrap_seconds', float('nan')):.0f}x"
            )
    if args.e2e:
        scen_e = E2E_QUICK if args.quick else E2E
        if args.e2e_scenarios:
            scen_e = {s: (E2E | E2E_QUICK)[s] for s in args.e2e_scenarios.split(",")}
        e2e(
            scen_e,
            args.layout,
            args.timeout,
            args.probe_rounds,
            args.mem_limit,
            args.bootstrap_rounds,
        )


if __name__ == "__main__":
    main()
