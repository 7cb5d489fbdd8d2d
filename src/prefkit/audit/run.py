"""`run_audit`: every check on one table, checks in parallel threads, outputs written."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.audit.findings import Findings, concat, flagged_summary
from prefkit.audit.health import health

CHECKS: tuple[str, ...] = (
    "duplicates",
    "leakage",
    "degenerate",
    "bias",
    "agreement",
    "annotators",
    "noise",
)

Progress = Callable[[str, int, int], None]


@dataclass
class AuditResult:
    """What the audit found: one `Findings` per check, all rows, one summary dict."""

    checks: dict[str, Findings]
    summary: dict[str, Any]
    rows: pa.Table
    paths: dict[str, Path] = field(default_factory=dict)
    noise_score: Any = None  # per-row suspicion (numpy array aligned with the table)
    p_a: Any = None  # per-row out-of-fold P(a wins) of the noise check's feature model
    row_ids: Any = None

    @property
    def findings(self) -> Findings:
        return concat(list(self.checks.values()))


def _clean(o: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, str | bytes):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def run_audit(
    table: pa.Table | Sequence[Path],
    out_dir: str | Path | None = None,
    checks: Sequence[str] = CHECKS,
    against: pa.Table | None = None,
    progress: Progress | None = None,
    near_dup_threshold: float = 0.8,
    embeddings: bool = False,
    workers: int = 2,
    source_name: str = "",
    engine: str = "local",
) -> AuditResult:
    """Audit a canonical comparisons table, or canonical comparisons Parquet files (read
    batch by batch: the text is never held whole, see docs/scale.md).

    `checks` picks a subset of `CHECKS`; `against` is an evaluation table for leakage;
    `progress(step, done, total)` is called as steps finish. When `out_dir` is given, writes
    `report.html`, `findings.parquet` and `summary.json` there. `engine` (`prefkit.engine`)
    runs the row-wise work (text statistics and flags, MinHash signatures) batch by batch,
    here or on a Ray cluster; the result is the same.
    """
    from prefkit.audit.agreement import find_agreement, votes
    from prefkit.audit.annotators import find_annotators
    from prefkit.audit.bias import find_bias
    from prefkit.audit.degenerate import find_degenerate
    from prefkit.audit.duplicates import find_duplicates
    from prefkit.audit.features import style
    from prefkit.audit.frame import TEXT_COLUMNS, Frame
    from prefkit.audit.leakage import find_leakage
    from prefkit.audit.noise import find_noise, fit_noise
    from prefkit.audit.rowwise import row_stats, stats_arrays, text_set_signatures
    from prefkit.engine import map_table

    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    steps = ["prepare", "signatures", "features", *checks]
    total = len(steps)
    done = 0

    def tick(step: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(step, done, total)

    _mmap_large_blocks()
    f = Frame.of(table, stats=engine == "local")  # row stats: batch by batch while reading
    _release()
    tick("prepare")
    if f.n == 0:
        empty = {c: Findings(c, summary={"rows": 0}) for c in checks}
        res = AuditResult(
            empty,
            {
                "input": {"rows": 0, "source": source_name, "has_text": False},
                "flagged": flagged_summary(concat(list(empty.values())).rows, 0),
                "health": {"verdict": "empty", "headline": "No rows to audit.", "indicators": []},
            }
            | {c: {"rows": 0} for c in checks},
            concat(list(empty.values())).rows,
            row_ids=f.row_id,
        )
        if out_dir is not None:
            write_outputs(res, Path(out_dir), f)
        return res
    need_sig = f.has_text and any(c in checks for c in ("duplicates", "leakage", "noise", "bias"))
    if engine != "local":
        f.stats = stats_arrays(map_table(f.origin, row_stats, engine, columns=TEXT_COLUMNS))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs: dict[str, Future[Findings]] = {}
        if "degenerate" in checks:
            # the only reader of the responses as written (freed after it) runs while the
            # signatures are computed, not beside the near-duplicate search, whose peak holds
            # the signatures of every distinct text
            jobs["degenerate"] = pool.submit(find_degenerate, f)
        psig: Any = None
        tsig: Any = None
        if need_sig:
            # the distinct texts are read back a chunk at a time (frame.TextSet)
            fp = pool.submit(text_set_signatures, f.prompt_set, engine)
            ft = pool.submit(text_set_signatures, f.text_set, engine)
            psig, tsig = fp.result(), ft.result()
            del fp, ft
        else:
            psig, tsig = None, None
        tick("signatures")
        st = style(f, psig, tsig)
        # duplicates and leakage are the only other users of the MinHash signatures (64 uint32
        # per distinct text: ~0.5 GiB at 4M rows with text): they run (side by side) before
        # the noise fit, and the signatures and the raw responses are freed instead of being
        # held through its peak
        if "duplicates" in checks:
            jobs["duplicates"] = pool.submit(
                find_duplicates, f, near_dup_threshold, True, psig, tsig
            )
        if "leakage" in checks:
            jobs["leakage"] = pool.submit(find_leakage, f, against, near_dup_threshold, True, psig)
        del psig, tsig
        for job in jobs.values():
            job.exception()  # wait; a failure is raised where the results are collected
        f.release_raw()
        _release()
        model = (
            fit_noise(f, st, embeddings=embeddings)
            if {"noise", "annotators"} & set(checks)
            else None
        )
        _release()
        v = votes(f)  # after the noise fit (which counts them itself): not held through it
        tick("features")
        results: dict[str, Findings] = {}
        for c in checks:
            # the checks after the noise fit are quick: one after another, each step's
            # per-row temporaries freed before the next (they would add up side by side)
            if c in jobs:
                results[c] = jobs[c].result()
            elif c == "bias":
                results[c] = find_bias(f, st)
            elif c == "agreement":
                results[c] = find_agreement(f, v)
            elif c == "annotators":
                assert model is not None
                results[c] = find_annotators(f, v, model)
            elif c == "noise":
                assert model is not None
                results[c] = find_noise(f, model)
            _release()
            tick(c)
    del jobs
    all_rows = concat(list(results.values())).rows
    summary: dict[str, Any] = {
        "input": {"rows": f.n, "source": source_name, "has_text": f.has_text},
        "flagged": flagged_summary(all_rows, f.n),
    }
    for c, r in results.items():
        summary[c] = r.summary
    summary["health"] = health(summary)
    summary = _clean(summary)
    res = AuditResult(
        results,
        summary,
        all_rows,
        noise_score=model.suspicion if model is not None else None,
        p_a=model.p_a if model is not None else None,
        row_ids=f.row_id,
    )
    if out_dir is not None:
        write_outputs(res, Path(out_dir), f)
    return res


def _release() -> None:
    """Hand the memory Arrow's allocator keeps for reuse back to the system between stages
    (what a stage freed would otherwise still count in the process's resident memory), after
    collecting the cycles that may still hold a stage's Arrow buffers."""
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    _malloc_trim()


MMAP_THRESHOLD = 1 << 22  # blocks from 4 MiB get their own mapping (glibc's M_MMAP_THRESHOLD)


def _mmap_large_blocks() -> None:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD` for this process. By default the
    threshold rises to the size of the largest block freed (up to 32 MiB), after which the
    audit's per-row arrays (8 bytes × millions of rows) are carved from the heap, whose freed
    pages stay resident; with a fixed threshold each such array is mapped on its own and
    returned to the system when freed (4M rows: −0.25 GiB resident at the same step,
    RESULTS.md). Nothing on other C libraries."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _malloc_trim() -> None:
    """glibc's `malloc_trim(0)`: hand the pages of freed blocks back to the system (numpy's
    arrays under the allocator's mmap threshold are carved from its heaps, which otherwise
    keep them resident). Nothing on other C libraries."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def write_outputs(res: AuditResult, out: Path, frame: Any = None) -> dict[str, Path]:
    from prefkit.audit.report import render

    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(res.rows, out / "findings.parquet", compression="zstd")
    (out / "summary.json").write_text(
        json.dumps(res.summary, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (out / "report.html").write_text(render(res, frame), encoding="utf-8")
    res.paths = {
        "report": out / "report.html",
        "findings": out / "findings.parquet",
        "summary": out / "summary.json",
    }
    return res.paths
