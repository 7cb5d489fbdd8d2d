"""Scale: `prefkit audit` and `prefkit rm score` (features model) as users run them, with
`--engine local` and `--engine ray` side by side in one run, on simulated comparisons with text.

For each size the `noisy` scenario (prompt + two responses of ~150–600 characters, 3 votes per
pair) is simulated to canonical Parquet in a subprocess, then each command runs as a
subprocess (`python -m prefkit.cli ...`). One local Ray cluster (`ray.init(num_cpus=N)`) is
started here before the runs and joined by the `--engine ray` commands through RAY_ADDRESS,
as on a cluster; its start-up time is printed once and not charged to the runs.

Measured per run, by sampling the process tree every 0.1 s with psutil:
- wall: seconds of the command's process;
- CPU: user+sys seconds of the command's processes, plus for `ray` the CPU the cluster's
  processes (raylet, workers) spent during the run;
- peak RSS: the largest sum of resident memory of the command's processes (for `ray` plus
  the cluster's workers; shared object-store pages count once per process that maps them,
  so the ray figure is an upper bound).
Rates: rows per wall second and per CPU second (the per-core rate docs/scale.md sizes with).

    .venv/bin/python benchmarks/bench_scale.py                         # 1M and 4M rows
    .venv/bin/python benchmarks/bench_scale.py --sizes 20000 --score-sizes 5000   # small
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _tree(p: Any) -> list[Any]:
    try:
        return [p, *p.children(recursive=True)]
    except Exception:
        return [p]


class Sampler:
    """Peak summed RSS and CPU seconds of a set of processes, sampled every `step` s."""

    def __init__(self, roots: list[Any], step: float = 0.1) -> None:
        self.roots, self.step = roots, step
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self.cpu0: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for r in self.roots:
            for p in _tree(r):
                seen[p.pid] = p
        return list(seen.values())

    def _sample(self) -> None:
        rss = 0
        for p in self._procs():
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
            except Exception:
                continue
        self.peak = max(self.peak, rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.step)

    def start(self, baseline: list[Any]) -> None:
        for p in baseline:  # CPU already spent by long-lived processes (the Ray cluster)
            try:
                t = p.cpu_times()
                self.cpu0[p.pid] = t.user + t.system
            except Exception:
                pass
        self._thread.start()

    def stop(self) -> tuple[int, float]:
        self._sample()
        self._stop.set()
        self._thread.join()
        cpu = sum(v - self.cpu0.get(pid, 0.0) for pid, v in self.cpu.items())
        return self.peak, cpu


def run(cmd: list[str], env: dict[str, str], cluster: list[Any]) -> dict[str, float]:
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    me = psutil.Process(proc.pid)
    s = Sampler([me, *cluster])
    s.start(cluster)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    peak, cpu = s.stop()
    # the command's own CPU, exactly (children included), from the kernel
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return {"wall": wall, "cpu": cpu, "rss_gib": peak / 2**30}


SHARD = 1_000_000


def simulated(work: Path, n: int, env: dict[str, str], repeat: bool = False) -> Path:
    """`work/noisy_{n}/comparisons.parquet`: the `noisy` scenario with `n` rows (seed 0). Above
    SHARD rows (the simulator holds its whole output in memory: ~3.6 GB per million rows) it
    is SHARD-row simulations with seeds 0, 1, ... streamed into one file, batch by batch; with
    `repeat` (`noisy_{n}_repeated`) the seed-0 simulation is repeated instead — enough for
    `rm score`, whose work and memory per row do not depend on other rows."""
    name = f"noisy_{n}_repeated" if repeat and n > SHARD else f"noisy_{n}"
    out = work / name / "comparisons.parquet"
    if out.exists():
        return out
    py = sys.executable
    if n <= SHARD:
        subprocess.run([py, "-m", "prefkit.cli", "simulate", "noisy", str(out.parent),
                        "--size", str(n), "--seed", "0"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        return out
    import pyarrow.parquet as pq

    shards = [simulated(work, SHARD, env)]
    for seed in range(1, -(-n // SHARD)):
        if repeat:
            shards.append(shards[0])
            continue
        d = work / f"noisy_{SHARD}_seed{seed}"
        if not (d / "comparisons.parquet").exists():
            subprocess.run([py, "-m", "prefkit.cli", "simulate", "noisy", str(d), "--size",
                            str(SHARD), "--seed", str(seed)], env=env, check=True,
                           capture_output=True)  # fmt: skip
        shards.append(d / "comparisons.parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    left = n
    with pq.ParquetWriter(out, pq.read_schema(shards[0])) as w:
        for f in shards:
            for b in pq.ParquetFile(f).iter_batches(batch_size=65_536):
                if left <= 0:
                    break
                b = b.slice(0, left)
                w.write_batch(b)
                left -= b.num_rows
    return out


def per_core_rates(n: int, model: Path | None) -> None:
    """Rows per second of each per-batch function on one core, in this process (the unit the
    sizing in docs/scale.md multiplies by cores): the audit's `row_stats` and
    `text_signatures`, rank's `count_batch`, and `rm score`'s `BatchScorer` (features)."""
    import pyarrow as pa

    from prefkit.audit.frame import Frame
    from prefkit.audit.rowwise import TEXT_COLUMNS, row_stats, text_signatures
    from prefkit.engine import map_table
    from prefkit.rank.data import BATTLE_KEYS, count_batch
    from prefkit.reward.score import BatchScorer
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    t = simulate("noisy", size=n, seed=0).tables[Kind.COMPARISONS]
    texts = Frame.of(t).texts
    arena = simulate("arena", size=n, seed=0).tables[Kind.COMPARISONS].select(BATTLE_KEYS)
    jobs: list[tuple[str, Any, Any, int]] = [
        ("audit row_stats (per comparison)", t.select(list(TEXT_COLUMNS)), row_stats, n),
        ("audit text_signatures (per distinct text)", pa.table({"text": texts}),
         text_signatures, len(texts)),
        ("rank count_batch (per battle)", arena, count_batch, n),
    ]  # fmt: skip
    if model is not None:
        k = min(n, 100_000)
        jobs.append(("rm score features (per comparison)", t.slice(0, k),
                     BatchScorer(str(model)), k))  # fmt: skip

        def features(batch: pa.Table) -> pa.Table:
            from prefkit.audit.frame import joined_text
            from prefkit.reward.features import response_features

            x, _ = response_features(
                joined_text(batch.column("prompt")), joined_text(batch.column("response_a"))
            )
            return pa.table({"x0": x[:, 0]})

        jobs.append(("reward features alone (per response)", t.slice(0, k), features, k))
    for name, table, fn, rows in jobs:
        c0, t0 = time.process_time(), time.perf_counter()
        map_table(table, fn, "local")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"per core: {name}: {rows / cpu:,.0f} rows/CPU-s ({rows:,} rows, {wall:.1f} s wall)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    ap.add_argument(
        "--score-sizes", type=int, nargs="+", default=None, help="rm score sizes (default --sizes)"
    )
    ap.add_argument("--engines", nargs="+", default=["local", "ray"])
    ap.add_argument("--commands", nargs="+", default=["audit", "score"])
    ap.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--rates", type=int, default=0, help="only the per-core rates of the batch functions"
    )
    ap.add_argument("--model", type=Path, default=None, help="--rates: a features model dir")
    args = ap.parse_args()
    if args.rates:
        per_core_rates(args.rates, args.model)
        return
    import psutil

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = dict(os.environ)
    env.pop("PREFKIT_ENGINE", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    print(f"cpus: {args.cpus}; load average before: {os.getloadavg()}")
    cluster: list[Any] = []
    ray_env = dict(env)
    if "ray" in args.engines:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        # after init: Ray's auth settings (RAY_AUTH_MODE) are in this process's environment
        ray_env = {k: v for k, v in os.environ.items() if k != "PREFKIT_ENGINE"}
        ray_env["RAY_ADDRESS"] = str(ray.get_runtime_context().gcs_address)
        print(f"ray cluster up in {time.perf_counter() - t0:.1f} s ({args.cpus} CPUs)")
        cluster = [p for p in psutil.Process().children(recursive=True)]
    # a features reward model trained once on 5,000 simulated rows
    model = work / "rm"
    if "score" in args.commands and not (model / "model.json").exists():
        subprocess.run([py, "-m", "prefkit.cli", "simulate", "noisy", str(work / "train"),
                        "--size", "5000", "--seed", "1"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([py, "-m", "prefkit.cli", "rm", "train",
                        str(work / "train" / "comparisons.parquet"), str(model)],
                       env=env, check=True, capture_output=True)  # fmt: skip
    plan: list[tuple[str, int]] = []
    if "audit" in args.commands:
        plan += [("audit", n) for n in args.sizes]
    if "score" in args.commands:
        plan += [("score", n) for n in (args.score_sizes or args.sizes)]
    results: list[dict[str, Any]] = []
    for command, n in plan:
        t0 = time.perf_counter()
        data = simulated(work, n, env, repeat=command == "score")
        print(f"data: {data} ({n:,} rows, {time.perf_counter() - t0:.1f} s)", flush=True)
        for engine in args.engines:
            out = work / f"{command}_{n}_{engine}"
            if command == "audit":
                cmd = [py, "-m", "prefkit.cli", "audit", str(data), "--out", str(out), "--json"]
            else:
                cmd = [py, "-m", "prefkit.cli", "rm", "score", str(model), str(data),
                       str(out) + ".parquet"]  # fmt: skip
            cmd += ["--engine", engine]
            shutil.rmtree(out, ignore_errors=True)
            m = run(cmd, ray_env if engine == "ray" else env, cluster if engine == "ray" else [])
            m |= {"command": command, "rows": n, "engine": engine}
            results.append(m)
            print(
                f"{command:<6} {n:>10,} rows  {engine:<5}  wall {m['wall']:8.1f} s  "
                f"CPU {m['cpu']:8.1f} s  peak RSS {m['rss_gib']:6.2f} GiB  "
                f"{n / m['wall']:9,.0f} rows/s  {n / max(m['cpu'], 1e-9):9,.0f} rows/CPU-s",
                flush=True,
            )
    print("\nratios")
    for command in ("audit", "score"):
        rows = [r for r in results if r["command"] == command]
        sizes = sorted({r["rows"] for r in rows})
        for n in sizes:
            by = {r["engine"]: r for r in rows if r["rows"] == n}
            if "local" in by and "ray" in by:
                print(
                    f"{command} {n:,}: ray/local wall {by['ray']['wall'] / by['local']['wall']:.2f}x"
                )
        loc = [r for r in rows if r["engine"] == "local"]
        if len(loc) >= 2:
            a, b = loc[0], loc[-1]
            print(
                f"{command} local peak RSS {b['rows']:,} / {a['rows']:,} rows: "
                f"{b['rss_gib'] / a['rss_gib']:.2f}x"
            )
    print(f"load average after: {os.getloadavg()}")
    if "ray" in args.engines:
        import ray

        ray.shutdown()
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
