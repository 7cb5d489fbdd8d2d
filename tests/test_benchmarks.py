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


def test_make_bench_arguments_are_options_of_their_scripts() -> None:
    """Each `--option` of a small run is declared by its script (a renamed flag fails here,
    not in the middle of `make bench`)."""
    missing = []
    for b in BENCHMARKS:
        source = (REPO / "benchmarks" / b.script).read_text()
        for arg in b.small:
            if arg.startswith("--") and f'"{arg}"' not in source:
                missing.append(f"{b.name}: {arg}")
    assert not missing, missing


def test_the_argument_check_finds_a_stale_flag() -> None:
    source = (REPO / "benchmarks" / "bench_serve.py").read_text()
    assert '"--db"' in source
    assert '"--kill-votes"' not in source
