"""Ingest benchmark: what reading costs, prefkit side by side with the tools users reach for,
each side in its own subprocess (its peak memory is its own), the same files, one run.

Sections (all by default; pick some with --only):

- `hh`: N HH-RLHF-style rows, JSON lines -> canonical Parquet. prefkit `convert` (what
  `prefkit convert IN OUT.parquet` runs: streamed, row groups written while later blocks
  are parsed) and `read` + `save`, against `datasets.load_dataset("json")` + `.map` to the
  TRL layout at its best settings (`batched=True, num_proc=2`).
- `hub`: a hub folder of 10 Parquet shards holding N TRL rows (prompt/chosen/rejected
  strings) read as one dataset by `prefkit.read(folder)`; beside it `datasets.load_dataset`
  ("parquet", data_dir=folder) (Arrow only: no messages, no prompt ids) and a bare
  `pyarrow.parquet.read_table` of the shards (the floor).
- `battles`: N model-only battles (model_a, model_b, outcome; 10k models) from Parquet, CSV
  and JSON lines, autodetected by `prefkit.read`; beside them `pyarrow` reading the same file
  (the floor) and `datasets.load_dataset` of it.
- `readers`: every single-file layout in tests/data/layouts repeated to --reader-rows
  records: the rate of each reader as users run it (vectorised where it can, else per row).

Times are wall seconds inside the process (after imports) and of the whole process; CPU is
the process's user+sys (for prefkit.read with its worker processes' added: a big hub folder
is read in forked workers, `PREFKIT_READ_PROCESSES=0` turns them off), memory its ru_maxrss
(the main process's). Prints rows/s and ratios.

    .venv/bin/python benchmarks/bench_ingest.py                 # 1M rows each (minutes)
    .venv/bin/python benchmarks/bench_ingest.py --rows 20000    # a small run (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAYOUTS = REPO / "tests" / "data" / "layouts"
WORDS = (
    "the a to of and how can i you what is my do it for in that this with be on not are your "
    "make good bad help why would like know get want tell about some me just people think time"
).split()


def _sent(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=n)).capitalize() + "."


def generate(path: Path, rows: int, seed: int = 0) -> int:
    """HH-style transcripts: 1-3 human/assistant exchanges, the last answer differs."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            turns = rng.randint(1, 3)
            prefix = ""
            for t in range(turns):
                prefix += f"\n\nHuman: {_sent(rng, rng.randint(4, 14))} #{i}"
                if t < turns - 1:
                    prefix += f"\n\nAssistant: {_sent(rng, rng.randint(5, 20))}"
            chosen = prefix + f"\n\nAssistant: {_sent(rng, rng.randint(5, 25))}"
            rejected = prefix + f"\n\nAssistant: {_sent(rng, rng.randint(5, 25))}"
            fh.write(json.dumps({"chosen": chosen, "rejected": rejected}) + "\n")
    return path.stat().st_size


def generate_hub(folder: Path, rows: int, shards: int = 10, seed: int = 0) -> int:
    """TRL standard preference rows as `data/train-0000k-of-000NN.parquet` shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    data = {
        "prompt": [f"{_sent(rng, rng.randint(4, 14))} #{i}" for i in range(rows)],
        "chosen": [_sent(rng, rng.randint(5, 25)) for _ in range(rows)],
        "rejected": [_sent(rng, rng.randint(5, 25)) for _ in range(rows)],
    }
    table = pa.table(data)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    step = -(-rows // shards)
    for k in range(shards):
        part = table.slice(k * step, step)
        pq.write_table(part, folder / "data" / f"train-{k:05d}-of-{shards:05d}.parquet")
    return sum(f.stat().st_size for f in (folder / "data").iterdir())


def generate_battles(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """Model-only battles (10k models, outcomes a/b/tie) as Parquet, CSV and JSON lines."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    models = np.array([f"model-{i}" for i in range(10_000)], dtype=object)
    a = rng.integers(0, len(models), rows)
    b = (a + rng.integers(1, len(models), rows)) % len(models)
    out = np.array(["a", "b", "tie"], dtype=object)[rng.integers(0, 3, rows)]
    table = pa.table({"model_a": models[a], "model_b": models[b], "outcome": out})
    paths = {
        "parquet": folder / "battles.parquet",
        "csv": folder / "battles.csv",
        "jsonl": folder / "battles.jsonl",
    }
    pq.write_table(table, paths["parquet"])
    pcsv.write_csv(table, paths["csv"])
    with paths["jsonl"].open("w", encoding="utf-8") as fh:
        for x, y, z in zip(
            table.column(0).to_pylist(), table.column(1).to_pylist(), out, strict=True
        ):
            fh.write(json.dumps({"model_a": x, "model_b": y, "outcome": z}) + "\n")
    return paths


def repeat_layout(src: Path, dst: Path, rows: int) -> int:
    """`src` (a layout file) repeated to about `rows` records in the same container."""
    name = src.name
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = pq.read_table(src)
        k = max(1, rows // max(t.num_rows, 1))
        pq.write_table(pa.concat_tables([t] * k), dst)
        return int(t.num_rows * k)
    if name.endswith(".csv"):
        lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
        head, body = lines[0], "".join(lines[1:])
        import csv
        import io

        n = sum(1 for _ in csv.reader(io.StringIO(body)))
        k = max(1, rows // max(n, 1))
        dst.write_text(head + body * k, encoding="utf-8")
        return n * k
    if name.endswith(".json"):
        recs = json.loads(src.read_text(encoding="utf-8"))
        k = max(1, rows // len(recs))
        dst.write_text(json.dumps(recs * k), encoding="utf-8")
        return len(recs) * k
    import gzip

    raw = gzip.decompress(src.read_bytes()) if name.endswith(".gz") else src.read_bytes()
    n = raw.count(b"\n")
    k = max(1, rows // max(n, 1))
    data = raw * k
    dst.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return n * k


PREFKIT_READ = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit import read
import prefkit.io.readers
def children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
t1 = time.perf_counter()
c1, k1 = time.process_time(), children()
res = read(sys.argv[1])
t2 = time.perf_counter()
read_cpu = time.process_time() - c1
workers_cpu = children() - k1
n = sum(t.num_rows for t in res.tables.values())
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"read_s": t2 - t1, "read_cpu_s": read_cpu + workers_cpu, "workers_cpu_s": workers_cpu,
                  "process_s": t2 - t0, "rows": n, "rows_in": res.rows_in,
                  "vectorised": res.rows_vectorised, "reader": res.reader, "rejects": len(res.rejects),
                  "cpu_s": ru.ru_utime + ru.ru_stime + children(), "maxrss_mb": ru.ru_maxrss / 1024,
                  "arrow_mb": sum(t.nbytes for t in res.tables.values()) / 2**20}))
"""

CONVERT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit.io.convert import convert
done = convert(sys.argv[1], sys.argv[2], "hh-rlhf")
dt = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
from prefkit.io.canonical import load
print(json.dumps({"process_s": dt, "rows": done.written, "rejects": len(done.rejects),
                  "streamed": done.streamed, "arrow_mb": load(sys.argv[2]).nbytes / 2**20,
                  "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}))
"""

READ_SAVE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from prefkit.io.detect import read
from prefkit.io.canonical import save
res = read(sys.argv[1], "hh-rlhf")
save(res.table, sys.argv[2])
dt = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"process_s": dt, "rows": res.table.num_rows, "arrow_mb": res.table.nbytes / 2**20,
                  "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}))
"""

DATASETS_HH = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import datasets
datasets.disable_progress_bars()
t1 = time.perf_counter()
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
MARK = "\n\nAssistant:"
def to_trl(batch):
    out = {"prompt": [], "chosen": [], "rejected": []}
    for c, r in zip(batch["chosen"], batch["rejected"]):
        k = c.rfind(MARK) + len(MARK)
        j = r.rfind(MARK) + len(MARK)
        out["prompt"].append(c[:k]); out["chosen"].append(c[k:]); out["rejected"].append(r[j:])
    return out
ds = ds.map(to_trl, batched=True, num_proc=2, remove_columns=["chosen", "rejected"])
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"read_s": t2 - t1, "process_s": t2 - t0, "rows": len(ds),
                  "cpu_s": ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime,
                  "maxrss_mb": ru.ru_maxrss / 1024}))
"""

DATASETS_LOAD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import datasets
datasets.disable_progress_bars()
t1 = time.perf_counter()
kind, path, cache = sys.argv[1], sys.argv[2], sys.argv[3]
kw = {"data_dir": path} if kind == "parquet" and not path.endswith(".parquet") else {"data_files": path}
ds = datasets.load_dataset(kind, split="train", cache_dir=cache, num_proc=None, **kw)
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"read_s": t2 - t1, "process_s": t2 - t0, "rows": len(ds),
                  "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}))
"""

ARROW_READ = r"""
import json, resource, sys, time, glob
t0 = time.perf_counter()
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.csv as pcsv, pyarrow.json as pj
t1 = time.perf_counter()
p = sys.argv[1]
if p.endswith(".csv"):
    t = pcsv.read_csv(p)
elif p.endswith(".jsonl"):
    t = pj.read_json(p)
else:
    files = sorted(glob.glob(p + "/**/*.parquet", recursive=True)) or [p]
    t = pa.concat_tables([pq.read_table(f) for f in files])
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"read_s": t2 - t1, "process_s": t2 - t0, "rows": t.num_rows,
                  "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def line(label: str, r: dict[str, Any], rows: int | None = None) -> str:
    n = rows if rows is not None else r["rows"]
    parts = [f"{label:<46}"]
    if "read_s" in r:
        parts.append(f"{n / r['read_s']:>12,.0f} rows/s read ({r['read_s']:.2f}s)")
    parts.append(f"{n / r['process_s']:>12,.0f} rows/s whole process ({r['process_s']:.2f}s)")
    parts.append(f"CPU {r['cpu_s']:.2f}s, peak RSS {r['maxrss_mb']:,.0f} MiB")
    return "  ".join(parts)


def bench_hh(tmp: Path, rows: int, skip_datasets: bool) -> None:
    src = tmp / "hh.jsonl"
    size = generate(src, rows)
    print(f"\n== hh: {rows:,} HH-style rows, {size / 2**20:.0f} MiB JSON lines")
    ours = run(CONVERT, str(src), str(tmp / "out.parquet"))
    print(line(f"prefkit convert -> canonical (streamed={ours['streamed']})", ours))
    print(f"{'':<46}  RSS / Arrow table = {ours['maxrss_mb'] / ours['arrow_mb']:.2f}x")
    whole = run(READ_SAVE, str(src), str(tmp / "out2.parquet"))
    print(line("prefkit read + save (whole table)", whole))
    if skip_datasets:
        return
    theirs = run(DATASETS_HH, str(src), str(tmp / "hf_cache"))
    print(line("datasets load_dataset + map(batched, num_proc=2)", theirs))
    print(
        f"ratio: prefkit convert is {theirs['process_s'] / ours['process_s']:.2f}x the speed "
        f"of datasets (whole process), {theirs['cpu_s'] / ours['cpu_s']:.2f}x less CPU "
        f"(datasets' CPU includes its 2 workers), {ours['maxrss_mb'] / theirs['maxrss_mb']:.2f}x "
        "its peak memory (main process)"
    )


def bench_hub(tmp: Path, rows: int, skip_datasets: bool) -> None:
    folder = tmp / "hub"
    size = generate_hub(folder, rows)
    print(f"\n== hub: {rows:,} TRL rows in 10 Parquet shards ({size / 2**20:.0f} MiB)")
    ours = run(PREFKIT_READ, str(folder))
    print(line(f"prefkit.read(folder) ({ours['reader']}, {ours['vectorised']:,} vectorised)", ours))
    print(
        f"{'':<46}  read CPU {ours['read_cpu_s']:.2f}s (of it worker processes "
        f"{ours['workers_cpu_s']:.2f}s; {os.environ.get('PREFKIT_READ_PROCESSES', 'auto')})"
    )
    floor = run(ARROW_READ, str(folder))
    print(line("pyarrow read_table of the shards (floor)", floor))
    if not skip_datasets:
        theirs = run(DATASETS_LOAD, "parquet", str(folder), str(tmp / "hf_cache_hub"))
        print(line("datasets load_dataset('parquet') (no messages)", theirs))
    print(f"goal >= 1,000,000 rows/s: prefkit read {rows / ours['read_s']:,.0f} rows/s")


def bench_battles(tmp: Path, rows: int, skip_datasets: bool) -> None:
    paths = generate_battles(tmp, rows)
    print(f"\n== battles: {rows:,} model-only battles (model_a, model_b, outcome; 10k models)")
    for kind, path in paths.items():
        ours = run(PREFKIT_READ, str(path))
        goal = 1_000_000 if kind == "parquet" else 300_000
        label = f"prefkit.read {kind} ({ours['reader']}, {ours['vectorised']:,} vectorised)"
        print(line(label, ours) + f"  [goal {goal:,} rows/s]")
        floor = run(ARROW_READ, str(path))
        print(line(f"pyarrow read of the {kind} (floor)", floor))
        if not skip_datasets:
            dkind = "json" if kind == "jsonl" else kind
            theirs = run(DATASETS_LOAD, dkind, str(path), str(tmp / f"hf_cache_{kind}"))
            print(line(f"datasets load_dataset('{dkind}')", theirs))
            print(
                f"{'':<46}  ratio: prefkit read is {theirs['read_s'] / ours['read_s']:.2f}x "
                "the speed of datasets' load"
            )


def bench_readers(tmp: Path, rows: int) -> None:
    print(f"\n== readers: every single-file layout of tests/data/layouts, ~{rows:,} records each")
    print(
        f"{'layout':<38} {'reader':<22} {'records':>9} {'rows out':>9} {'vect.':>9} {'records/CPU-s':>14} {'records/s':>11}"
    )
    for src in sorted(LAYOUTS.iterdir()):
        if src.is_dir() or src.name == "README.md":
            continue
        dst = tmp / ("big_" + src.name)
        n = repeat_layout(src, dst, rows)
        r = run(PREFKIT_READ, str(dst))
        print(
            f"{src.name:<38} {r['reader']:<22} {n:>9,} {r['rows']:>9,} {r['vectorised']:>9,} "
            f"{r['rows_in'] / r['read_cpu_s']:>14,.0f} {r['rows_in'] / r['read_s']:>11,.0f}"
        )
        dst.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of hh, hub and battles")
    ap.add_argument("--reader-rows", type=int, default=50_000, help="records per layout")
    ap.add_argument("--only", nargs="*", choices=["hh", "hub", "battles", "readers"])
    ap.add_argument("--skip-datasets", action="store_true", help="only time prefkit")
    args = ap.parse_args()
    parts = args.only or ["hh", "hub", "battles", "readers"]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        if "hh" in parts:
            bench_hh(tmp, args.rows, args.skip_datasets)
        if "hub" in parts:
            bench_hub(tmp, args.rows, args.skip_datasets)
        if "battles" in parts:
            bench_battles(tmp, args.rows, args.skip_datasets)
        if "readers" in parts:
            bench_readers(tmp, args.reader_rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
