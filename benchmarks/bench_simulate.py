"""Simulator throughput: 100,000 comparisons with text (issue 4: < 30 s on 2 cores).

    .venv/bin/python -m benchmarks.bench_simulate [--size 100000] [--seed 0]

Times `simulate()` (world, text, votes, Arrow tables, truth) and `write_simulation()`
(canonical Parquet via prefkit.io.save, truth.json) separately for noisy and arena.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prefkit.schema import Kind
from prefkit.simulate import simulate, write_simulation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default="noisy,arena")
    args = ap.parse_args()
    print("| scenario | rows | simulate s | write s | total s | rows/s | text MB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenarios.split(","):
        t0 = time.perf_counter()
        sim = simulate(name, size=args.size, seed=args.seed)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            write_simulation(sim, Path(d))
            t2 = time.perf_counter()
        table = sim.tables[Kind.COMPARISONS]
        text = sum(
            len(r[0]["content"])
            for col in ("response_a", "response_b")
            for r in table.column(col).to_pylist()
        )
        print(
            f"| {name} | {table.num_rows} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t2 - t0:.2f} "
            f"| {table.num_rows / (t2 - t0):,.0f} | {text / 1e6:.1f} |"
        )


if __name__ == "__main__":
    main()
