"""Where row-parallel work runs: `local` (this process, batch by batch) or `ray` (Ray Data).

prefkit does not have a distributed engine of its own. Stages hand this module *per-batch
functions* — Arrow table in, Arrow table out, each output row a function of its input row
only — and keep their small global fits local. `map_batches` runs such a function over a
table or over Parquet files, either here (one batch at a time: memory is one batch plus what
the caller keeps) or on a Ray cluster (`ray.data` `map_batches`, order preserved), so both
engines give the same rows. `run_tasks` runs one function per item (one file, one shard) as
Ray tasks or in local threads.

The engine is chosen by `--engine` or, without it, `PREFKIT_ENGINE` (default `local`). The Ray
engine joins the cluster named by `RAY_ADDRESS` (`ray://...` or `host:port`), else starts a
local one with every core of this machine (docs/scale.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

ENGINES = ("local", "ray")
BATCH_ROWS = 1 << 14  # rows per batch: a few MB of text, small next to a worker's memory

T = TypeVar("T")
R = TypeVar("R")
BatchFn = Callable[[pa.Table], pa.Table]


class EngineError(ValueError):
    """An engine that cannot be used (unknown name, Ray missing or unreachable)."""


def resolve(engine: str | None) -> str:
    """The engine to use: `engine` when given, else `PREFKIT_ENGINE`, else `local`."""
    name = (engine or os.environ.get("PREFKIT_ENGINE") or "local").strip().lower()
    if name not in ENGINES:
        where = "--engine" if engine else "PREFKIT_ENGINE"
        raise EngineError(f"{where} {name}: unknown engine; known: {', '.join(ENGINES)}")
    return name


def ray_init() -> Any:
    """Import Ray and connect: the running session, else the cluster at `RAY_ADDRESS`, else a
    new local cluster. Returns the `ray` module."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise EngineError(
            f"--engine ray needs Ray Data: pip install 'prefkit[scale]' (import failed: {e})"
        ) from None
    import logging

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise EngineError(f"RAY_ADDRESS {address}: cannot join the Ray cluster ({e})") from None
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-dataset INFO lines on stderr
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # rows come back in input order
    ctx.enable_progress_bars = False  # prefkit shows its own progress on stderr
    ctx.print_on_execution_start = False
    return ray


def ray_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to (ray_init first)."""
    import ray

    res: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return int(res.get("CPU", 1))


def cluster_gpus() -> float:
    """GPUs of the Ray cluster this process is connected to (ray_init first)."""
    import ray

    res: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return float(res.get("GPU", 0))


def _local_batches(
    source: pa.Table | Sequence[Path], batch_rows: int, columns: Sequence[str] | None
) -> Iterator[pa.Table]:
    if isinstance(source, pa.Table):
        t = source.select(list(columns)) if columns is not None else source
        for b in t.to_batches(max_chunksize=batch_rows):
            yield pa.Table.from_batches([b], schema=t.schema)
        return
    from prefkit.io.base import parquet_batches

    cols = list(columns) if columns is not None else None
    for path in source:
        for b in parquet_batches(path, batch_rows, cols):
            yield pa.Table.from_batches([b])


def map_batches(
    source: pa.Table | Sequence[Path],
    fn: BatchFn | type,
    engine: str = "local",
    batch_rows: int = BATCH_ROWS,
    columns: Sequence[str] | None = None,
    fn_args: tuple[Any, ...] = (),
    progress: Callable[[int], None] | None = None,
    num_gpus: float = 0.0,
) -> Iterator[pa.Table]:
    """`fn` over every batch of `source` (a table, or Parquet files read batch by batch), the
    result batches in input order. `fn` is a function, or a class whose instances (built once
    per worker with `fn_args`) are called on batches: one model per worker. `columns` limits
    the columns read. `progress(rows)` is called as batches finish."""
    if engine == "local":
        call: BatchFn = fn(*fn_args) if isinstance(fn, type) else fn
        for batch in _local_batches(source, batch_rows, columns):
            out = call(batch)
            if progress is not None:
                progress(batch.num_rows)
            yield out
        return
    ray = ray_init()
    if isinstance(source, pa.Table):
        t = source.select(list(columns)) if columns is not None else source
        ds = ray.data.from_arrow(t)
    else:
        ds = ray.data.read_parquet(
            [str(p) for p in source], columns=list(columns) if columns else None
        )
    kw: dict[str, Any] = {
        "batch_format": "pyarrow",
        "batch_size": batch_rows,
        "zero_copy_batch": True,
    }
    if isinstance(fn, type):
        kw["fn_constructor_args"] = fn_args
        # one model per actor; one CPU stays free for the read tasks that feed the actors
        # (actors holding every CPU would starve them: the pipeline would wait forever)
        cpus = ray_cpus()
        if num_gpus:
            kw["concurrency"] = max(1, int(cluster_gpus()))
            kw["num_gpus"] = num_gpus
        else:
            kw["concurrency"] = max(1, cpus - 1)
            kw["num_cpus"] = 1 if cpus > 1 else 0.5
    ds = ds.map_batches(fn, **kw)
    for b in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        if progress is not None:
            progress(b.num_rows)
        yield b


def map_table(
    source: pa.Table | Sequence[Path],
    fn: BatchFn | type,
    engine: str = "local",
    **kw: Any,
) -> pa.Table:
    """`map_batches` collected into one table (for results that are small per row)."""
    parts = list(map_batches(source, fn, engine, **kw))
    if not parts:
        return pa.table({})
    return pa.concat_tables(parts).combine_chunks()


def run_tasks(
    fn: Callable[[T], R], items: Sequence[T], engine: str = "local", threads: int = 2
) -> list[R]:
    """`fn(item)` for every item, results in order: Ray tasks (retried when a worker dies)
    or `threads` local threads. `fn` must be importable by the workers (a module-level
    function)."""
    if engine == "local" or not items:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            return list(pool.map(fn, items))
    ray = ray_init()
    task = ray.remote(max_retries=3)(fn)
    return list(ray.get([task.remote(x) for x in items]))
