"""Every benchmark at a small size, one after another (`make bench`).

Reproduces the shape of each table in benchmarks/RESULTS.md (the same sides, competitors and
columns) in under 10 minutes on 2 idle cores; the sizes of the recorded runs are in the
commands next to each table. Each benchmark runs as its own process with the arguments
listed in ``BENCHMARKS`` (to add one: append a line), its output goes to
``OUT/<name>.log``, and ``OUT/summary.json`` records per benchmark the command, exit code,
wall time and the load average before and after. The whole run holds the machine's
benchmark lock (``/tmp/prefkit-bench.lock``, as ``flock`` does) so no two benchmarks overlap.

    .venv/bin/python -m benchmarks.run_all                  # all, small sizes
    .venv/bin/python -m benchmarks.run_all --only rank,align
    .venv/bin/python -m benchmarks.run_all --list
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOCK = Path("/tmp/prefkit-bench.lock")


@dataclass(frozen=True)
class Bench:
    name: str
    script: str  # file in benchmarks/
    small: tuple[str, ...]  # arguments of the small run
    what: str


BENCHMARKS: list[Bench] = [
    Bench("simulate", "bench_simulate.py", ("--size", "10000"),
          "simulator: comparisons with text per second (noisy, arena)"),
    Bench("ingest", "bench_ingest.py", ("--rows", "50000", "--reader-rows", "2000"),
          "HH, battles, hub folder, every reader vs datasets and pyarrow"),
    Bench("rank", "bench_rank.py", ("--quick", "--scenarios", "50x100k,2kx50k", "--timeout", "120"),
          "Bradley-Terry fit vs choix, crowd-kit, evalica, sklearn; bootstrap"),
    Bench("rank_e2e", "bench_rank.py", ("--e2e-only", "--quick", "--timeout", "120", "--probe-rounds", "2"),
          "whole `prefkit rank` with intervals vs evalica and the Arena sklearn bootstrap"),
    Bench("rank_coverage", "bench_rank_coverage.py",
          ("--datasets-50", "10", "--datasets-1000", "4", "--datasets-10000", "1"),
          "coverage of the default 95% intervals at 50, 1,000, 10,000 items"),
    Bench("audit", "bench_audit.py", ("--sizes", "20000"),
          "all audit checks on comparisons with text"),
    Bench("scale", "bench_scale.py", ("--sizes", "20000", "--score-sizes", "5000"),
          "audit and rm score, --engine local vs --engine ray: wall, CPU, peak RSS"),
    Bench("stream", "bench_stream.py", ("--sizes", "5000", "20000", "--commands", "inspect", "pairs"),
          "inspect and pairs on canonical Parquet, batch by batch: wall, CPU, peak RSS at two sizes"),
    Bench("audit_real", "bench_audit_real.py", ("--seeds", "0", "--datasets", "pandalm", "icai"),
          "audit checks on real sets with injected faults vs cleanlab"),
    Bench("noise", "bench_noise.py", ("--seeds", "0", "--size", "5000"),
          "label-noise detection vs cleanlab find_label_issues"),
    Bench("noise_seeds", "bench_noise_seeds.py", ("--seeds", "10", "--size", "4000"),
          "label-noise target seed by seed (development seeds): precision, recall, P@R0.6"),
    Bench("noise_rules", "bench_noise_rules.py", ("--seeds", "10", "--size", "4000"),
          "label-noise flag rules and the true-margin ceiling (development seeds)"),
    Bench("noise_prompt", "bench_noise_prompt.py", ("--seeds", "10", "--size", "4000"),
          "per-prompt answer models as label-noise priors (development seeds)"),
    Bench("reward_sim", "bench_reward.py",
          ("--only", "sim", "--sim-size", "1500", "--sim-seeds", "1", "--sim-backends", "features"),
          "reward model trained on noisy vs cleaned simulated data"),
    Bench("reward_speed", "bench_reward.py",
          ("--only", "speed", "--speed-texts", "64", "--rounds", "2", "--no-cache-pass"),
          "embed RM scoring vs raw sentence-transformers encode"),
    Bench("align", "bench_align.py", ("--pairs", "24", "--repeats", "3"),
          "prefix-shared / packed DPO batches vs unshared and TRL DPOTrainer"),
    Bench("judge", "bench_judge.py",
          ("--pairs", "200", "--openai-calls", "20", "--seeds", "1", "--route-size", "2000"),
          "judge client calls/s vs the openai client; cache; routing vs random"),
    Bench("explain", "bench_explain.py", ("features", "--size", "3000"),
          "explain features + effects vs reward features + scikit-learn LogisticRegressionCV"),
    Bench("explain_coverage", "bench_explain_coverage.py", ("--datasets", "3", "--size", "2000"),
          "explain: planted signs, interval coverage, selection rates"),
    Bench("pluralistic", "bench_pluralistic.py",
          ("--votes-per-annotator", "60", "--annotators", "15", "--level-runs", "5", "--permutations", "200"),
          "per-group leaderboards, heterogeneity test level, latent-group recovery (ARI)"),
    Bench("personal", "bench_personal.py",
          ("--seeds", "1", "--annotators", "24", "--votes-per-annotator", "150", "--bootstrap", "200"),
          "personalised reward model: worst-group accuracy vs pooled, adapting new users"),
    Bench("select", "bench_select.py",
          ("--seeds", "1", "--sim-size", "3000", "--datasets", "noisy", "--arena-seeds", "3",
           "--rows", "100000", "--keep", "2000", "--prompts", "20000"),
          "select: selected vs random vs all (feature RM), active arena votes, RM label curve, 10k of 1M"),
    Bench("select_dev", "bench_select_dev.py",
          ("--seeds", "10", "--sim-size", "3000", "--draws", "2", "--configs", "audit,pairs"),
          "select: where a training selection's gain comes from (dev seeds; merged votes, designs)"),
    Bench("serve", "bench_serve.py",
          ("--db", "sqlite", "--votes", "2000", "--clients", "10"),
          "votes/s, retries and kill -9 against the web app (SQLite)"),
]  # fmt: skip


@contextmanager
def bench_lock(wait: bool = True) -> Iterator[None]:
    """The same lock `flock /tmp/prefkit-bench.lock CMD` takes."""
    with LOCK.open("a") as fh:
        if wait:
            print(f"waiting for {LOCK} (another benchmark may be running)", file=sys.stderr)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(b: Bench, out: Path, timeout: float) -> dict[str, object]:
    cmd = [sys.executable, str(HERE / b.script), *b.small]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with (out / f"{b.name}.log").open("w") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        try:
            rc: int | str = subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout after {timeout:.0f} s"
    return {
        "name": b.name,
        "what": b.what,
        "command": " ".join(["python", f"benchmarks/{b.script}", *b.small]),
        "exit_code": rc,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "log": str(out / f"{b.name}.log"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", default="", help="comma-separated names (default: all)")
    ap.add_argument("--out", type=Path, default=Path("bench-out"), help="logs and summary.json")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per benchmark")
    ap.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    args = ap.parse_args()
    known = {b.name: b for b in BENCHMARKS}
    if args.list:
        for b in BENCHMARKS:
            print(
                f"{b.name:14s} {b.what}\n{'':14s} python benchmarks/{b.script} {' '.join(b.small)}"
            )
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(known)
    bad = [n for n in names if n not in known]
    if bad:
        ap.error(f"unknown benchmark(s) {bad}; known: {', '.join(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    asked = time.perf_counter()
    with bench_lock():
        t0 = time.perf_counter()  # the run's time starts once the lock is ours
        waited = round(t0 - asked, 1)
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        for name in names:
            b = known[name]
            print(
                f"[{len(results) + 1}/{len(names)}] {name}: {b.what}", file=sys.stderr, flush=True
            )
            res = run(b, args.out, args.timeout)
            results.append(res)
            print(f"    exit {res['exit_code']} in {res['seconds']} s (log {res['log']})",
                  file=sys.stderr, flush=True)  # fmt: skip
    total = round(time.perf_counter() - t0, 1)
    summary = {
        "started": started,
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "total_seconds": total,
        "waited_for_lock_seconds": waited,
        "benchmarks": results,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("| benchmark | exit | seconds | load before -> after (1 min) |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['name']} | {r['exit_code']} | {r['seconds']} | "
            f"{r['load_before'][0]} -> {r['load_after'][0]} |"  # type: ignore[index]
        )
    print(
        f"total {total} s (after {waited} s waiting for the benchmark lock); "
        f"logs and summary.json in {args.out}"
    )
    if any(r["exit_code"] != 0 for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
