"""Streaming a Parquet file holds one row group, not every row group read so far."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.engine import map_batches
from prefkit.io.base import parquet_batches

ROWS, GROUP = 120_000, 6_000


def _file(tmp_path: Path) -> tuple[Path, int]:
    rng = np.random.default_rng(0)
    letters = rng.integers(97, 123, size=(ROWS, 150), dtype=np.uint8)
    text = pa.array([r.tobytes().decode() for r in letters])  # ~150 B each, incompressible-ish
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": text}), path, row_group_size=GROUP)
    return path, path.stat().st_size


def _peak_growth(batches: object) -> tuple[int, int]:
    base = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for b in batches:  # type: ignore[attr-defined]
        rows += b.num_rows
        peak = max(peak, pa.total_allocated_bytes() - base)
    return peak, rows


def test_streamed_batches_do_not_keep_what_was_read(tmp_path: Path) -> None:
    path, size = _file(tmp_path)
    assert pq.ParquetFile(path).metadata.num_row_groups == ROWS // GROUP
    peak, rows = _peak_growth(parquet_batches(path, 4096))
    assert rows == ROWS
    # a few row groups' worth at most (one group is 1/20 of the file), never the whole file
    assert peak < size / 3, (peak, size)
    # the engine's local batches (rm score, rank counts) read the same way
    peak_engine, rows_engine = _peak_growth(map_batches([path], lambda t: t, "local", 4096))
    assert rows_engine == ROWS and peak_engine < size / 3, (peak_engine, size)
    # (pyarrow 26's default reader, `pre_buffer=True`, keeps ~the whole file here: 2026-12-07)
