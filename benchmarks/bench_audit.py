"""Audit throughput: all checks on simulated comparisons with text (`noisy` scenario).

    .venv/bin/python benchmarks/bench_audit.py [--sizes 100000 200000] [--workers 2]

Prints wall time per size and the linear extrapolation to 1M rows (the target is < 10 min on
2 cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from prefkit.audit.run import run_audit
from prefkit.schema import Kind
from prefkit.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"cpus available: {len(os.sched_getaffinity(0))}")
    rates = []
    for n in args.sizes:
        t = simulate("noisy", size=n, seed=0).tables[Kind.COMPARISONS]
        steps: dict[str, float] = {}
        last = [time.perf_counter()]

        def progress(
            step: str,
            done: int,
            total: int,
            steps: dict[str, float] = steps,
            last: list[float] = last,
        ) -> None:
            now = time.perf_counter()
            steps[step] = now - last[0]
            last[0] = now

        t0 = time.perf_counter()
        last[0] = t0
        run_audit(t, progress=progress, workers=args.workers)
        secs = time.perf_counter() - t0
        rates.append(secs / n)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        detail = ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
        print(f"{n} rows: {secs:.1f} s ({n / secs:,.0f} rows/s), peak RSS {rss:.0f} MiB; {detail}")
    print(
        f"extrapolated to 1,000,000 rows: {rates[-1] * 1e6 / 60:.1f} min at the largest size's "
        f"rate, {max(rates) * 1e6 / 60:.1f} min at the slowest size's rate"
    )


if __name__ == "__main__":
    main()
