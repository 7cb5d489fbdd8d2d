"""Bad input tried as a new user would: each gets a clear one-line message (exit 1) or a
documented result, never a traceback and never NaN in the leaderboard."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prefkit.rank import bt
from prefkit.rank.data import RankInputError, aggregate, battles
from tests.rank._data import invoke, llmfao_csv, run_cli


def _error(res: object) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    line = err.splitlines()[-1]
    assert line.startswith("error:")
    return line


def test_single_item(tmp_path: Path) -> None:
    f = llmfao_csv(tmp_path / "one.csv", [("A", "A", "left"), ("A", "A", "tie")])
    line = _error(run_cli("rank", str(f), "--json"))
    assert "only 0 item" in line or "at least two" in line
    b = battles(["A", "A"], ["A", "A"], ["a", "tie"])
    assert b.skipped == {"self_battle": 2}
    with pytest.raises(RankInputError, match="at least two"):
        bt.fit(aggregate(b))


def test_all_ties_bt_half_gives_equal_scores_davidson_refuses(tmp_path: Path) -> None:
    rows = [("A", "B", "tie"), ("B", "C", "tie"), ("A", "C", "tie"), ("C", "A", "tie")]
    f = llmfao_csv(tmp_path / "ties.csv", rows)
    code, err, stdout = invoke("rank", str(f), "--json", "--rounds", "50")
    assert code == 0, err
    board = json.loads(stdout)["leaderboard"]
    assert [r["score"] for r in board] == [1000.0, 1000.0, 1000.0]
    assert all(r["rank"] == 1 and r["rank_high"] == 1 for r in board)
    assert all(math.isfinite(r[k]) for r in board for k in ("ci_low", "ci_high"))
    code, err, _ = invoke("rank", str(f), "--model", "davidson")
    assert code == 1 and "every battle is a tie" in err
    code, err, _ = invoke("rank", str(f), "--ties", "drop")
    assert code == 1 and "no battle left" in err


def test_disconnected_graph_refused_or_largest(tmp_path: Path) -> None:
    rows = [("A", "B", "left"), ("B", "C", "right"), ("C", "A", "left"), ("A", "B", "right")]
    rows += [("X", "Y", "left"), ("Y", "X", "left")]
    f = llmfao_csv(tmp_path / "two.csv", rows)
    line = _error(run_cli("rank", str(f)))
    assert "2 disconnected components (sizes 3, 2)" in line and "--components largest" in line
    code, err, stdout = invoke(
        "rank", str(f), "--components", "largest", "--json", "--ci", "sandwich"
    )
    assert code == 0, err
    out = json.loads(stdout)
    assert {r["item"] for r in out["leaderboard"]} == {"A", "B", "C"}
    assert sorted(out["dropped_items"]) == ["X", "Y"]
    assert any("disconnected" in n for n in out["notes"])


def test_self_battles_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = [("A", "B", "left"), ("B", "A", "left"), ("A", "A", "left"), ("B", "B", "tie")]
    rows += [("A", "B", "tie"), ("B", "A", "right")]
    f = llmfao_csv(tmp_path / "self.csv", rows)
    code, err, stdout = invoke("rank", str(f), "--json", "--ci", "sandwich")
    assert code == 0, err
    out = json.loads(stdout)
    assert out["skipped"] == {"self_battle": 2}
    assert out["battles"] == 4
    assert sum(r["n"] for r in out["leaderboard"]) == 2 * 4
    assert any("self-battle" in n for n in out["notes"])


def test_unknown_outcome_names_the_row(tmp_path: Path) -> None:
    f = llmfao_csv(tmp_path / "bad.csv", [("A", "B", "left"), ("A", "B", "maybe")])
    code, err, stdout = invoke("rank", str(f), "--json")
    # the reader rejects the row and it is counted; the library names it when given arrays
    assert code == 0, err
    assert json.loads(stdout)["rejected_rows"] == 1
    # and the user sees which row and why, not only a count (a real process, its stderr)
    proc = subprocess.run(
        [sys.executable, "-c", "from prefkit.cli import main; main()", "rank", str(f)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{f.name}, line 3, field 'winner'" in proc.stderr and "'maybe'" in proc.stderr
    assert "OUT.parquet.rejects.jsonl" in proc.stderr
    with pytest.raises(RankInputError, match=r"row 1, field 'outcome': unknown value 'maybe'"):
        battles(["A", "A"], ["B", "B"], ["a", "maybe"])


def test_text_only_comparisons_need_model_names(tmp_path: Path) -> None:
    from prefkit.io import save
    from prefkit.schema import Kind, from_rows

    rows = [
        {"prompt": "q", "response_a": "x", "response_b": "y", "outcome": o, "annotator": "u"}
        for o in ("a", "b", "tie")
    ]
    path = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "text.parquet")
    code, err, _ = invoke("rank", str(path))
    assert code == 1 and "model_a" in err and "prefkit aggregate" in err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    f = llmfao_csv(tmp_path / "ok.csv", [("A", "B", "left"), ("B", "A", "left")])
    for args in (
        ["--model", "elo"],
        ["--ties", "model"],
        ["--model", "davidson", "--ties", "half"],
        ["--anchor", "A"],
        ["--rounds", "0"],
    ):
        code, err, _ = invoke("rank", str(f), *args)
        assert code == 2, (args, err)


def test_never_winning_item_stays_finite_with_a_note() -> None:
    a = ["A", "B", "C", "A", "B", "C", "D", "D", "D"]
    b = ["B", "C", "A", "C", "A", "B", "A", "B", "C"]
    o = ["a", "a", "a", "b", "b", "b", "b", "b", "b"]  # D loses every battle
    c = aggregate(battles(a, b, o))
    f = bt.fit(c)
    assert f.prior == bt.AUTO_PRIOR
    assert np.isfinite(f.theta).all()
    assert f.theta[f.items.index("D")] == f.theta.min()
    assert any("never win or never lose" in n and "D" in n for n in f.notes)
    with pytest.raises(RankInputError, match="infinite with prior 0"):
        bt.fit(c, bt.RankConfig(prior=0.0))  # the user insists on the MLE: it does not exist
