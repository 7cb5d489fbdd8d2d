"""Where a folder read in worker processes spends its time: `prefkit.read(FOLDER)` in this
process, each worker's files timed with `getrusage` (user, sys, minor faults) around every
file it reads and writes back, this process's own CPU and faults, and when the first file
started and how long after the last one the read returned. Runs (fresh processes, one after
another) are summarised by their medians.

    PYTHONPATH=src python benchmarks/profile_hub_read.py FOLDER [--runs 5]
    PYTHONPATH=src python benchmarks/profile_hub_read.py --make FOLDER --rows 1000000

`--make` writes the 10-shard TRL hub folder of `bench_ingest.py --only hub` first. New pages
the kernel hands out (zeroed) are not in `getrusage`; count them with
`perf record -e kmem:mm_page_alloc` around one run (RESULTS.md, "Ingest").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ONE_RUN = r"""
import json, os, resource, statistics, sys, time
from prefkit import read
import prefkit.io.readers
from prefkit.io import forked

LOG = sys.argv[2]
work = forked._work

def usage(who=resource.RUSAGE_SELF):
    r = resource.getrusage(who)
    return r.ru_utime, r.ru_stime, r.ru_minflt

def timed(task):
    t, a = time.time(), usage()
    out = work(task)
    b = usage()
    with open(LOG, "a") as fh:
        fh.write(json.dumps({"pid": os.getpid(), "start": t, "end": time.time(),
                             "user": b[0] - a[0], "sys": b[1] - a[1], "faults": b[2] - a[2]}) + "\n")
    return out

forked._work = timed
p0, c0, t1 = usage(), usage(resource.RUSAGE_CHILDREN), time.time()
res = read(sys.argv[1])
t2 = time.time()
import concurrent.futures.process as cfp, threading
for t in threading.enumerate():  # workers still exiting: wait, to count their CPU
    if isinstance(t, cfp._ExecutorManagerThread):
        t.join()
p1, c1 = usage(), usage(resource.RUSAGE_CHILDREN)
tasks = [json.loads(line) for line in open(LOG)] if os.path.exists(LOG) else []
pids = sorted({t["pid"] for t in tasks})
per = {p: [t for t in tasks if t["pid"] == p] for p in pids}
firsts = [min(ts, key=lambda t: t["start"]) for ts in per.values()]
print(json.dumps({
    "rows": sum(t.num_rows for t in res.tables.values()), "wall": t2 - t1,
    "parent_cpu": p1[0] + p1[1] - p0[0] - p0[1], "parent_faults": p1[2] - p0[2],
    "workers_user": c1[0] - c0[0], "workers_sys": c1[1] - c0[1], "workers_faults": c1[2] - c0[2],
    "per_worker_cpu": sorted(sum(t["user"] + t["sys"] for t in ts) for ts in per.values()),
    "per_worker_files": sorted(len(ts) for ts in per.values()),
    "first_file_cpu": sum(t["user"] + t["sys"] for t in firsts),
    "first_file_faults": sum(t["faults"] for t in firsts),
    "later_file_cpu": statistics.median([t["user"] + t["sys"] for t in tasks if t not in firsts] or [0]),
    "first_start": min((t["start"] for t in tasks), default=t2) - t1,
    "after_last": t2 - max((t["end"] for t in tasks), default=t1),
}))
"""


def one(folder: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "tasks.jsonl")
        proc = subprocess.run(
            [sys.executable, "-c", ONE_RUN, str(folder), log],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--make", action="store_true", help="write the 10-shard TRL folder first")
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    if args.make:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_ingest import generate_hub

        generate_hub(args.folder, args.rows)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs = [one(args.folder) for _ in range(args.runs)]
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for r in runs:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))
    rows = runs[0]["rows"]
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in runs[0]
        if isinstance(runs[0][k], int | float)
    }
    print(
        f"median of {len(runs)}: wall {med['wall']:.3f} s ({rows / med['wall']:,.0f} rows/s), "
        f"CPU parent {med['parent_cpu']:.3f} s + workers {med['workers_user']:.3f} user "
        f"{med['workers_sys']:.3f} sys ({med['workers_faults']:,.0f} faults); first file per "
        f"worker {med['first_file_cpu']:.3f} s together ({med['first_file_faults']:,.0f} "
        f"faults), later files {med['later_file_cpu'] * 1000:.0f} ms each; first file "
        f"started {med['first_start'] * 1000:.0f} ms after the call, read returned "
        f"{med['after_last'] * 1000:.0f} ms after the last"
    )


if __name__ == "__main__":
    main()
