"""The files of a folder or glob read in worker processes: both cores for the Python work of
the readers (the prompt ids' hashing, one call per prompt, holds the GIL, so threads do not
help). Workers are forked (they start with this process's imports, no re-import), each
reads whole files exactly as the in-process path does (`fn(job)`), and hands its tables back
as Arrow IPC files in a temporary folder (/dev/shm when it has room) that this process
memory-maps — no pickling, no copy — and unlinks once mapped.

Anything that goes wrong in the machinery (no fork, a worker that dies, no room for a file)
falls back to reading in this process; a file whose reading raises (a `--strict` error, a
usage error) is read again here, so the error is the one, with file and line, that the
in-process path raises. `PREFKIT_READ_PROCESSES=0` turns worker processes off; a positive
number uses that many (at most one per file) whatever the folder's size."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from prefkit.io.base import ReadResult
from prefkit.schema import Kind

ENV = "PREFKIT_READ_PROCESSES"
#: below this many bytes of input files, forking does not pay. Measured on 10 shards of TRL
#: rows (RESULTS.md, "Ingest"): in a fresh process (the CLI) the break-even is ~100k rows
#: (~9 MiB of Parquet; 300k rows: 1.2x faster, 50k: slower); in a process that has read
#: before, in-process reading is warm and forking paid only from ~1M rows
MIN_BYTES = 16 << 20
#: the temporary IPC files are about this many times the input's bytes (1M TRL rows: 85 MiB
#: of Parquet, 340 MiB of canonical Arrow); /dev/shm is used when it has that much room
GROWTH = 6

J = TypeVar("J")


def workers_for(files: Sequence[Path]) -> int:
    """How many worker processes read `files`: 0 = read them in this process."""
    setting = os.environ.get(ENV, "").strip().lower()
    if setting in ("0", "off", "no", "false"):
        return 0
    if len(files) < 2 or not fork_safe():
        return 0
    if setting.isdigit():
        n = min(len(files), int(setting))
        return n if n >= 2 else 0
    n = min(len(files), cpus())
    if n < 2 or input_bytes(files) < MIN_BYTES:
        return 0
    return n


def fork_safe() -> bool:
    """Linux with the `fork` start method (Windows has none; macOS's is unsafe with threads)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def cpus() -> int:
    """The cores this process may run on (its affinity: a container's or `taskset`'s)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def input_bytes(files: Sequence[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:
            pass
    return total


def temp_folder(need: int) -> str:
    """A new folder for the IPC files: in /dev/shm (memory) when it has `need` bytes free,
    else the system's temporary folder."""
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > need:
            return tempfile.mkdtemp(prefix="prefkit-read-", dir=shm)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="prefkit-read-")


def _work(
    task: tuple[Callable[[Any], ReadResult], Any, str],
) -> tuple[ReadResult, dict[Kind, str]] | None:
    """In a worker: `fn(job)`, its tables written as IPC files in `folder`. None when the
    file's reading raised or a table could not be written: the parent reads it itself."""
    fn, job, folder = task
    try:
        res = fn(job)
    except Exception:
        return None
    paths: dict[Kind, str] = {}
    try:
        for kind, table in res.tables.items():
            path = os.path.join(folder, f"{uuid.uuid4().hex}.arrow")
            paths[kind] = path
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
    except Exception:  # no room, a type IPC cannot hold: the parent reads this file
        for path in paths.values():
            try:
                os.unlink(path)
            except OSError:
                pass
        return None
    res.tables = {}
    return res, paths


def mapped(path: str) -> pa.Table:
    """The table of an IPC file, memory-mapped (zero-copy); the file is unlinked, its pages
    live as long as the table's buffers."""
    source = pa.memory_map(path)
    try:
        table = pa.ipc.open_file(source).read_all()
    finally:
        source.close()
        os.unlink(path)
    return table


def read_forked(
    fn: Callable[[J], ReadResult], jobs: Sequence[J], workers: int, need: int
) -> list[ReadResult] | None:
    """`fn(job)` for every job in `workers` forked processes, results in order (as
    `[fn(job) for job in jobs]` gives them); None when the processes could not run (the
    caller reads in this process)."""
    from concurrent.futures import ProcessPoolExecutor

    try:
        folder = temp_folder(need)
    except OSError:
        return None
    try:
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_work, (fn, job, folder)) for job in jobs]
                outs = [f.result() for f in futures]
        except Exception:  # fn's own errors stay in `_work`: this is the machinery's
            return None
        results: list[ReadResult] = []
        for job, out in zip(jobs, outs, strict=True):
            if out is None:
                results.append(fn(job))  # raises what reading it here raises
                continue
            res, paths = out
            try:
                res.tables = {kind: mapped(path) for kind, path in paths.items()}
            except (OSError, pa.ArrowInvalid):  # a file that cannot be mapped: read it here
                res = fn(job)
            results.append(res)
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)
