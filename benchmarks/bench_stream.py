"""Bounded memory: `prefkit inspect`, `pairs` and `explain` (feature pass; `--directions 0`) on
canonical Parquet, as users run them, at two sizes, before (the whole-table code: another
prefkit source tree, e.g. a checkout of the commit before the streaming, given by --before)
and after (this tree), in the same run.

For each size the `noisy` scenario (prompt + two responses of ~150–600 characters, 3 votes per
pair) is simulated to canonical Parquet, then each command runs as a subprocess
(`python -m prefkit.cli ...`, PYTHONPATH = the tree measured). Measured per run, by sampling
the process every 0.1 s (bench_scale.run): wall seconds, CPU seconds, peak RSS. The table
ends with the growth of peak RSS from the smallest to the largest size next to the growth of
the rows: streamed commands grow far slower than the rows.

    python benchmarks/bench_stream.py --before /path/to/old/src          # 200k and 800k rows
    python benchmarks/bench_stream.py --sizes 20000 40000                # after only, small
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import run  # noqa: E402  (same sampler as the scale benchmark)

HERE = Path(__file__).resolve().parents[1] / "src"


def commands(py: str, data: Path, out: Path) -> dict[str, list[str]]:
    cli = [py, "-m", "prefkit.cli"]
    return {
        "inspect": [*cli, "inspect", str(data), "--json"],
        "pairs": [*cli, "pairs", str(data), str(out / "pairs.parquet"), "--ties", "half",
                  "--json"],
        "explain": [*cli, "explain", str(data), "--out", str(out / "explain"), "--directions",
                    "0", "--rounds", "10", "--json"],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 800_000])
    ap.add_argument("--commands", nargs="+", default=["inspect", "pairs", "explain"])
    ap.add_argument("--before", type=Path, default=None, help="src dir of the whole-table code")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_stream_"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PREFKIT_ENGINE"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    trees = [("after", HERE)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    for n in args.sizes:
        data_dir = work / f"noisy_{n}"
        data = data_dir / "comparisons.parquet"
        if not data.exists():
            t0 = time.perf_counter()
            subprocess.run([*[py, "-m", "prefkit.cli"], "simulate", "noisy", str(data_dir),
                            "--size", str(n), "--seed", "0"],
                           env=env | {"PYTHONPATH": str(HERE)}, check=True,
                           capture_output=True)  # fmt: skip
            print(f"simulated {n:,} rows in {time.perf_counter() - t0:.1f} s "
                  f"({data.stat().st_size / 2**20:.0f} MiB Parquet)", flush=True)  # fmt: skip
        for command in args.commands:
            for tree, src in trees:
                out = work / f"{command}_{n}_{tree}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                cmd = commands(py, data, out)[command]
                r = run(cmd, env | {"PYTHONPATH": str(src)}, [])
                results[(command, tree, n)] = r
                print(f"{command:8} {tree:6} {n:>9,} rows: wall {r['wall']:7.1f} s  "
                      f"CPU {r['cpu']:7.1f} s  peak RSS {r['rss_gib']:5.2f} GiB", flush=True)  # fmt: skip
                shutil.rmtree(out, ignore_errors=True)
    lo, hi = min(args.sizes), max(args.sizes)
    print(f"\nload average after: {os.getloadavg()}")
    print(f"\n| command | code | rows | wall s | CPU s | peak RSS GiB | RSS growth {lo:,}→{hi:,} "
          f"(rows ×{hi / lo:g}) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for command in args.commands:
        for tree, _ in trees:
            for n in args.sizes:
                r = results[(command, tree, n)]
                growth: Any = ""
                if n == hi and lo != hi:
                    growth = f"×{r['rss_gib'] / results[(command, tree, lo)]['rss_gib']:.2f}"
                print(f"| {command} | {tree} | {n:,} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                      f"{r['rss_gib']:.2f} | {growth} |")  # fmt: skip


if __name__ == "__main__":
    main()
