"""`prefkit rank` end to end: the --json contract, --out files, scales, anchors, style control."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import simulate
from tests.rank._data import invoke, run_cli
from tests.raw import llmfao_counts

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LLMFAO = DATA / "llmfao" / "llmfao.csv"
KEYS = {
    "item",
    "score",
    "ci_low",
    "ci_high",
    "rank",
    "rank_low",
    "rank_high",
    "wins",
    "losses",
    "ties",
    "n",
}


def _json(*args: str) -> dict[str, object]:
    code, err, stdout = invoke(*args)
    assert code == 0, err
    out: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_json_contract_on_llmfao(tmp_path: Path) -> None:
    out = _json("rank", str(LLMFAO), "--json", "--rounds", "200", "--out", str(tmp_path / "r"))
    assert out["model"] == "bt" and out["scale"] == "elo" and out["ties"] == "half"
    board = out["leaderboard"]
    raw = llmfao_counts()  # plain csv over the published file
    assert isinstance(board, list) and len(board) == raw.models
    assert all(set(r) == KEYS for r in board)
    scores = [r["score"] for r in board]
    assert scores == sorted(scores, reverse=True)
    assert abs(sum(scores) / len(scores) - 1000.0) < 1e-6
    assert all(r["ci_low"] <= r["score"] <= r["ci_high"] for r in board)
    assert all(r["rank_low"] <= r["rank"] <= r["rank_high"] for r in board)
    assert sum(r["n"] for r in board) == 2 * raw.rows
    assert sum(r["ties"] for r in board) == 2 * raw.ties
    files = {Path(p).name for p in out["files"]}  # type: ignore[union-attr]
    assert files == {"leaderboard.csv", "win_probability.csv", "index.html"}
    with (tmp_path / "r" / "leaderboard.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["item"] for r in rows] == [r["item"] for r in board]
    with (tmp_path / "r" / "win_probability.csv").open() as fh:
        mat = list(csv.reader(fh))
    assert len(mat) == raw.models + 1 and mat[0][1:] == [r["item"] for r in board]
    p12, p21 = float(mat[1][2]), float(mat[2][1])
    assert abs(p12 + p21 - 1.0) < 1e-5 and p12 > 0.5
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<svg" in html and board[0]["item"] in html  # type: ignore[index]


def test_logit_scale_anchor_and_tie_models() -> None:
    out = _json(
        "rank", str(LLMFAO), "--json", "--model", "davidson", "--ci", "sandwich", "--scale", "logit"
    )
    board = out["leaderboard"]
    assert out["ties"] == "model" and out["tie_parameter"] > 0  # type: ignore[operator]
    assert abs(sum(r["score"] for r in board)) < 1e-9  # type: ignore[union-attr]
    anch = _json(
        "rank", str(LLMFAO), "--json", "--model", "davidson", "--ci", "sandwich", "--scale", "logit",
        "--anchor", "GPT 4=2.5",
    )  # fmt: skip
    a = {r["item"]: r for r in anch["leaderboard"]}  # type: ignore[union-attr]
    b = {r["item"]: r for r in board}  # type: ignore[union-attr]
    assert a["GPT 4"]["score"] == pytest.approx(2.5)
    for m in b:
        assert a[m]["ci_high"] - a[m]["ci_low"] == pytest.approx(b[m]["ci_high"] - b[m]["ci_low"])
    rk = _json(
        "rank", str(LLMFAO), "--json", "--model", "rao-kupper", "--ci", "none", "--baselines"
    )
    assert rk["tie_parameter"] > 1  # type: ignore[operator]
    assert set(rk["baselines"]) == {"elo", "average_win_rate"}  # type: ignore[arg-type]


def test_style_control_on_simulated_arena(tmp_path: Path) -> None:
    sim = simulate("arena", size=3000, seed=3)
    path = save(sim.tables[Kind.COMPARISONS], tmp_path / "arena.parquet")
    out = _json(
        "rank",
        str(path),
        "--json",
        "--style-control",
        "--ci",
        "sandwich",
        "--out",
        str(tmp_path / "o"),
    )
    assert out["style_control"] is True
    assert set(out["style_coefficients"]) == {"length", "headers", "lists", "bold"}  # type: ignore[arg-type]
    assert len(out["leaderboard"]) == len(out["leaderboard_raw"]) == 16  # type: ignore[arg-type]
    assert (tmp_path / "o" / "leaderboard_raw.csv").exists()


def test_demo_style_invocation_in_a_subprocess(tmp_path: Path) -> None:
    """What `prefkit demo` runs: canonical Parquet from the noisy scenario, --out and --json."""
    sim = simulate("noisy", size=3000, seed=0)
    path = save(sim.tables[Kind.COMPARISONS], tmp_path / "comparisons.parquet")
    res = run_cli("rank", str(path), "--out", str(tmp_path / "rank"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {r["item"] for r in out["leaderboard"]} == set(sim.truth["model_strength"])
    assert "Traceback" not in res.stderr
