"""Ingest benchmark: N synthetic HH-style rows, JSONL -> canonical Parquet with prefkit, side
by side with the obvious alternative, `datasets.load_dataset("json")` + `.map` to the TRL
layout (prompt / chosen / rejected), in the same run.

prefkit is timed twice: `prefkit.io.convert` (what `prefkit convert IN OUT.parquet` runs: row
groups are written while later blocks are parsed) and `read` + `save` (the whole table in
memory, then written). Each side runs in its own subprocess so its peak memory (ru_maxrss) is
its own. Prints rows/s, CPU seconds, peak memory, the Arrow size of the canonical table, and
the ratios.

    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "the a to of and how can i you what is my do it for in that this with be on not are your "
    "make good bad help why would like know get want tell about some me just people think time"
).split()


def generate(path: Path, rows: int, seed: int = 0) -> int:
    """HH-style transcripts: 1-3 human/assistant exchanges, the last answer differs."""
    rng = random.Random(seed)

    def sent(n: int) -> str:
        return " ".join(rng.choices(WORDS, k=n)).capitalize() + "."

    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            turns = rng.randint(1, 3)
            prefix = ""
            for t in range(turns):
                prefix += f"\n\nHuman: {sent(rng.randint(4, 14))} #{i}"
                if t < turns - 1:
                    prefix += f"\n\nAssistant: {sent(rng.randint(5, 20))}"
            chosen = prefix + f"\n\nAssistant: {sent(rng.randint(5, 25))}"
            rejected = prefix + f"\n\nAssistant: {sent(rng.randint(5, 25))}"
            fh.write(json.dumps({"chosen": chosen, "rejected": rejected}) + "\n")
    return path.stat().st_size


def generate_trl_parquet(path: Path, rows: int, seed: int = 0) -> int:
    """TRL standard preference rows (prompt/chosen/rejected strings) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)

    def sent(n: int) -> str:
        return " ".join(rng.choices(WORDS, k=n)).capitalize() + "."

    data = {
        "prompt": [f"{sent(rng.randint(4, 14))} #{i}" for i in range(rows)],
        "chosen": [sent(rng.randint(5, 25)) for _ in range(rows)],
        "rejected": [sent(rng.randint(5, 25)) for _ in range(rows)],
    }
    pq.write_table(pa.table(data), path)
    return path.stat().st_size


PARQUET = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit.io.detect import read
from prefkit.io.canonical import save
res = read(sys.argv[1])
save(res.table, sys.argv[2])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rows": res.table.num_rows, "reader": res.reader,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "arrow_bytes": res.table.nbytes,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CONVERT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit.io.convert import convert
done = convert(sys.argv[1], sys.argv[2], "hh-rlhf")
dt = time.perf_counter() - t0
cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from prefkit.io.canonical import load
print(json.dumps({"seconds": dt, "rows": done.written, "rejects": len(done.rejects),
                  "streamed": done.streamed, "arrow_bytes": load(sys.argv[2]).nbytes,
                  "cpu_s": cpu, "maxrss_mb": rss}))
"""

PREFKIT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit.io.detect import read
from prefkit.io.canonical import save
res = read(sys.argv[1], "hh-rlhf")
save(res.table, sys.argv[2])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rows": res.table.num_rows, "rejects": len(res.rejects),
                  "arrow_bytes": res.table.nbytes,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DATASETS = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
MARK = "\n\nAssistant:"
def to_trl(ex):
    k = ex["chosen"].rfind(MARK) + len(MARK)
    j = ex["rejected"].rfind(MARK) + len(MARK)
    return {"prompt": ex["chosen"][:k], "chosen": ex["chosen"][k:], "rejected": ex["rejected"][j:]}
ds = ds.map(to_trl)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rows": len(ds),
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-datasets", action="store_true", help="only time prefkit")
    ap.add_argument(
        "--jsonl", type=Path, help="time this HH-style JSONL file instead of generating one"
    )
    ap.add_argument(
        "--parquet", action="store_true", help="also time TRL Parquet -> canonical (autodetected)"
    )
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        if args.jsonl:
            src = args.jsonl
            print(f"timing {src} ({src.stat().st_size / 2**20:.0f} MiB)")
        else:
            src = Path(tmp) / "hh.jsonl"
            t0 = time.perf_counter()
            size = generate(src, args.rows)
            print(
                f"generated {args.rows:,} rows, {size / 2**20:.0f} MiB "
                f"in {time.perf_counter() - t0:.1f}s"
            )
        ours = run(CONVERT, str(src), str(Path(tmp) / "out.parquet"))
        arrow_mb = ours["arrow_bytes"] / 2**20
        print(
            f"prefkit  convert JSONL->canonical Parquet (streamed={ours['streamed']}): "
            f"{ours['rows'] / ours['seconds']:>10,.0f} rows/s "
            f"({ours['seconds']:.1f}s wall, {ours['cpu_s']:.1f}s CPU = "
            f"{ours['rows'] / ours['cpu_s']:,.0f} rows per CPU-second), "
            f"peak RSS {ours['maxrss_mb']:,.0f} MiB, "
            f"Arrow table {arrow_mb:,.0f} MiB (RSS/Arrow {ours['maxrss_mb'] / arrow_mb:.2f}x)"
        )
        whole = run(PREFKIT, str(src), str(Path(tmp) / "out2.parquet"))
        whole_mb = whole["arrow_bytes"] / 2**20
        print(
            f"prefkit  read + save (whole table):       {whole['rows'] / whole['seconds']:>10,.0f} "
            f"rows/s ({whole['seconds']:.1f}s wall, {whole['cpu_s']:.1f}s CPU = "
            f"{whole['rows'] / whole['cpu_s']:,.0f} rows per CPU-second), "
            f"peak RSS {whole['maxrss_mb']:,.0f} MiB, "
            f"Arrow table {whole_mb:,.0f} MiB (RSS/Arrow {whole['maxrss_mb'] / whole_mb:.2f}x)"
        )
        if args.parquet:
            pq_src = Path(tmp) / "trl.parquet"
            generate_trl_parquet(pq_src, args.rows)
            pqr = run(PARQUET, str(pq_src), str(Path(tmp) / "trl_out.parquet"))
            print(
                f"prefkit  TRL Parquet->canonical ({pqr['reader']}): "
                f"{pqr['rows'] / pqr['seconds']:>10,.0f} rows/s ({pqr['seconds']:.1f}s wall, "
                f"{pqr['cpu_s']:.1f}s CPU), peak RSS {pqr['maxrss_mb']:,.0f} MiB, "
                f"Arrow table {pqr['arrow_bytes'] / 2**20:,.0f} MiB"
            )
        print(f"load average after prefkit: {os.getloadavg()[0]:.1f}")
        if args.skip_datasets:
            return
        theirs = run(DATASETS, str(src), str(Path(tmp) / "hf_cache"))
        print(
            f"datasets load_dataset+map to TRL: {theirs['rows'] / theirs['seconds']:>10,.0f} rows/s "
            f"({theirs['seconds']:.1f}s wall, {theirs['cpu_s']:.1f}s CPU = "
            f"{theirs['rows'] / theirs['cpu_s']:,.0f} rows per CPU-second), "
            f"peak RSS {theirs['maxrss_mb']:,.0f} MiB"
        )
        print(
            f"ratio (convert vs datasets): prefkit is {theirs['seconds'] / ours['seconds']:.2f}x "
            f"faster in wall time, {theirs['cpu_s'] / ours['cpu_s']:.2f}x less CPU, "
            f"uses {ours['maxrss_mb'] / theirs['maxrss_mb']:.2f}x the peak memory"
        )


if __name__ == "__main__":
    main()
