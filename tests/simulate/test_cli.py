"""`prefkit simulate` and `prefkit demo` through the real Typer app."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app, main
from prefkit.demo import _model_scores, run_demo
from prefkit.io.canonical import load
from prefkit.simulate import SCENARIOS

runner = CliRunner()


def test_list_describes_every_scenario() -> None:
    r = runner.invoke(app, ["simulate", "--list", "--json"])
    assert r.exit_code == 0, r.output
    listing = json.loads(r.stdout)
    assert set(listing) == set(SCENARIOS) == {
        "clean", "noisy", "arena", "ratings", "rankings", "pluralistic", "judges", "planted",
        "pluralistic3",
    }  # fmt: skip
    for name, entry in listing.items():
        assert len(entry["description"]) > 40
        assert "truth.json" in entry["files"]
        assert entry["default_size"] == SCENARIOS[name].default_size
    human = runner.invoke(app, ["simulate", "--list"])
    assert human.exit_code == 0
    assert all(name in human.output for name in SCENARIOS)


def test_simulate_writes_files_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "noisy"
    r = runner.invoke(
        app, ["simulate", "noisy", str(out), "--size", "900", "--seed", "5", "--votes", "1"]
    )
    assert r.exit_code == 0, r.output
    t = load(out / "comparisons.parquet")
    assert t.num_rows == 900
    truth = json.loads((out / "truth.json").read_text())
    assert truth["scenario"] == "noisy" and truth["seed"] == 5 and truth["votes_per_pair"] == 1
    ids = set(t.column("id").to_pylist())
    assert set(truth["flipped_ids"]) <= ids and truth["flipped_ids"]
    r = runner.invoke(app, ["simulate", "ratings", str(tmp_path / "r"), "--size", "200"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert names == {"ratings.parquet", "binary.parquet", "critiques.parquet", "truth.json"}


def _exit_code(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Exit code of the real entry point (`prefkit.cli.main`), as in a shell."""
    monkeypatch.setattr(sys, "argv", ["prefkit", *args])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_simulate_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (
        ["simulate", "bogus", str(tmp_path)],
        ["simulate", "noisy"],
        ["simulate", "arena", str(tmp_path), "--votes", "3"],
        ["simulate", "noisy", str(tmp_path), "--size", "0"],
    ):
        assert _exit_code(args, monkeypatch) == 2, args
    assert not (tmp_path / "comparisons.parquet").exists()


STEPS = ("simulate", "inspect", "audit", "pairs", "rank")


def _reported(output: str) -> dict[str, str]:
    """Step -> status from the demo's summary lines (`  audit     ok (2.7 s)`)."""
    found = re.findall(r"^  (\w+)\s+(ok|skipped|failed[^\n]*?) \(\d+\.\d s\)$", output, re.M)
    return dict(found)


def test_demo_runs_the_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", str(out), "--size", "1200"])
    assert r.exit_code == 0, r.output
    assert _reported(r.output) == {step: "ok" for step in STEPS}, r.output
    assert (out / "data" / "comparisons.parquet").exists()
    truth = json.loads((out / "data" / "truth.json").read_text())
    # every step wrote what its command promises
    summary = json.loads((out / "audit" / "summary.json").read_text())
    assert summary["noise"]["rows_flagged"] > 0
    assert (out / "audit" / "report.html").stat().st_size > 10_000
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    assert pairs and {"prompt", "chosen", "rejected"} <= set(pairs[0])
    with (out / "rank" / "leaderboard.csv").open() as fh:
        board = list(csv.DictReader(fh))
    assert {r["item"] for r in board} == set(truth["model_strength"])
    text = " ".join(r.output.split())
    assert f"{len(truth['flipped_ids'])} flipped labels" in text
    assert "HTML report:" in text and "report.html" in text
    # the real entry point (`prefkit demo` in a shell) exits 0 too
    assert _exit_code(["demo", str(tmp_path / "again"), "--size", "600"], monkeypatch) == 0


def _app(rank_fails: bool = False, simulate_fails: bool = False) -> typer.Typer:
    """A CLI app with the real simulate and inspect commands and a deliberately broken stage."""
    from prefkit.io.cli import register as register_io
    from prefkit.simulate.cli import register as register_simulate

    app = typer.Typer()
    register_io(app)
    if simulate_fails:

        @app.command(
            "simulate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
        )
        def broken_simulate(ctx: typer.Context) -> None:
            raise RuntimeError("disk full")

    else:
        register_simulate(app)
    if rank_fails:

        @app.command("rank")
        def broken_rank(
            inp: Path,
            out: Path = typer.Option(None, "--out"),
            as_json: bool = typer.Option(False, "--json"),
        ) -> None:
            raise ValueError(f"cannot rank {inp.name}")

    return app


def test_demo_reports_a_failing_downstream_step_and_goes_on(tmp_path: Path) -> None:
    status = run_demo(_app(rank_fails=True), tmp_path / "d", size=600)
    assert status["simulate"] == "ok" and status["inspect"] == "ok"
    assert status["audit"] == "skipped" and status["pairs"] == "skipped"
    assert (
        status["rank"].startswith("failed") and "cannot rank comparisons.parquet" in status["rank"]
    )
    assert load(tmp_path / "d" / "data" / "comparisons.parquet").num_rows == 600


def test_demo_exits_1_when_a_downstream_step_fails(tmp_path: Path) -> None:
    """`prefkit demo` in an app whose rank command breaks: every step still runs and is
    reported, and the command fails with one line naming the broken and missing steps."""
    from prefkit.demo import register

    broken = _app(rank_fails=True)
    register(broken)
    r = runner.invoke(broken, ["demo", str(tmp_path / "d"), "--size", "600"])
    assert r.exit_code == 1
    assert isinstance(r.exception, CLIError)
    msg = str(r.exception)
    assert "rank (failed: ValueError: cannot rank comparisons.parquet)" in msg
    assert "audit (skipped)" in msg and "pairs (skipped)" in msg
    assert "simulate" not in msg and "inspect" not in msg
    assert _reported(r.output) == {
        "simulate": "ok", "inspect": "ok", "audit": "skipped", "pairs": "skipped",
        "rank": "failed: ValueError: cannot rank comparisons.parquet",
    }  # fmt: skip


def test_demo_exits_1_when_simulate_fails(tmp_path: Path) -> None:
    from prefkit.demo import register

    broken = _app(simulate_fails=True)
    register(broken)
    r = runner.invoke(broken, ["demo", str(tmp_path / "d"), "--size", "600"])
    assert r.exit_code == 1 and isinstance(r.exception, CLIError)
    assert "simulate (failed: RuntimeError: disk full)" in str(r.exception)
    assert "inspect (not run)" in str(r.exception)


def test_demo_stops_when_simulate_fails(tmp_path: Path) -> None:
    status = run_demo(_app(simulate_fails=True), tmp_path / "d", size=600)
    assert status["simulate"].startswith("failed") and "disk full" in status["simulate"]
    assert "inspect" not in status


def test_model_scores_from_rank_summaries() -> None:
    models = {"m1", "m2", "m3"}
    assert _model_scores({"scores": {"m1": 1.0, "m2": 0.5, "m3": -1}}, models) == {
        "m1": 1.0, "m2": 0.5, "m3": -1.0,
    }  # fmt: skip
    rows = [{"model": m, "score": s} for m, s in (("m1", 2.0), ("m2", 1.0), ("m3", 0.0))]
    assert _model_scores({"leaderboard": rows}, models) == {"m1": 2.0, "m2": 1.0, "m3": 0.0}
    assert _model_scores({"leaderboard": rows[:2]}, models) is None
