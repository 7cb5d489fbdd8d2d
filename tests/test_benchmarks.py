"""`make bench` runs every benchmark: each script in benchmarks/ is in run_all's list."""

from __future__ import annotations

from benchmarks.run_all import BENCHMARKS

from tests.conftest import REPO


def test_every_benchmark_script_is_in_make_bench() -> None:
    scripts = {p.name for p in (REPO / "benchmarks").glob("bench_*.py")}
    listed = {b.script for b in BENCHMARKS}
    assert scripts, "no benchmark scripts found"
    assert not scripts - listed, (
        f"add to benchmarks/run_all.py BENCHMARKS: {sorted(scripts - listed)}"
    )
    assert listed <= scripts, f"listed but missing: {sorted(listed - scripts)}"
    assert len({b.name for b in BENCHMARKS}) == len(BENCHMARKS)
