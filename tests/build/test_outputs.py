"""What `prefkit pairs` writes reads back with its ties, weights and margins (inspect, split);
runs that would write nothing, or leave a split empty, stop with the counts; `--ties keep
--to trl` warns; `--margin scores` takes the margin from the scores the reader kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io.detect import read
from tests.conftest import DATA, REPO

PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"
runner = CliRunner()


def _run(*args: str, code: int = 0) -> Any:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, (res.output, res.exception)
    return res


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_pairs_with_ties_keep_their_ties_weights_and_margins(tmp_path: Path) -> None:
    pd = tmp_path / "pd.parquet"
    _run("pairs", str(PANDALM), str(pd), "--ties", "keep")
    raw = pq.read_table(pd).to_pylist()
    n_tie = sum(r["tie"] for r in raw)
    assert 0 < n_tie < len(raw)
    # inspect sees the ties (it reported 0 before)
    out = json.loads(_run("inspect", str(pd), "--json").stdout)
    assert out["reader"] == "prefkit-pairs"
    assert out["outcomes"]["tie"] == n_tie and out["outcomes"]["a"] == len(raw) - n_tie
    got = read(pd).table.to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in raw]
    for g, r in zip(got, raw, strict=True):
        meta = dict(g["meta"])
        assert float(meta["weight"]) == r["weight"] and float(meta["margin"]) == r["margin"]
        assert (g["outcome"] == "tie") == r["tie"]
        assert g["prompt_id"] == r["prompt_id"]
    # split keeps the pairs layout: every column, every value
    sp = tmp_path / "sp"
    _run("split", str(pd), str(sp), "--test", "0.3")
    parts = [pq.read_table(sp / f"{s}.parquet") for s in ("train", "test")]
    assert all(p.schema.names == pq.read_schema(pd).names for p in parts)
    back = sorted((r for p in parts for r in p.to_pylist()), key=lambda r: r["id"])
    assert back == sorted(raw, key=lambda r: r["id"])
    assert json.loads((sp / "split.json").read_text())["layout"] == "as input"


def test_ties_half_jsonl_reads_back_as_ties(tmp_path: Path) -> None:
    half = tmp_path / "half.jsonl"
    _run("pairs", str(PANDALM), str(half), "--ties", "half", "--to", "trl")
    rows = _jsonl(half)
    n_tie = sum(r["tie"] for r in rows)
    assert n_tie > 0 and all(r["weight"] == 0.5 for r in rows if r["tie"])
    res = read(half)
    assert res.reader == "prefkit-pairs"
    outcomes = res.table.column("outcome").to_pylist()
    assert outcomes.count("tie") == n_tie and outcomes.count("a") == len(rows) - n_tie
    weights = [float(dict(m)["weight"]) for m in res.table.column("meta").to_pylist()]
    assert weights == [r["weight"] for r in rows]


def test_ties_keep_to_trl_warns(tmp_path: Path) -> None:
    out = tmp_path / "keep.jsonl"
    res = _run("pairs", str(PANDALM), str(out), "--ties", "keep", "--to", "trl", "--json")
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["warnings"] and "plain DPOTrainer" in report["warnings"][0]
    assert "warning:" in res.stderr
    quiet = _run("pairs", str(PANDALM), str(tmp_path / "drop.jsonl"), "--to", "trl", "--json")
    assert json.loads(quiet.stdout.strip().splitlines()[-1])["warnings"] == []


def test_pairs_that_write_nothing_exit_1_with_the_reasons(tmp_path: Path) -> None:
    src = tmp_path / "ties.jsonl"
    src.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}", "response_a": "x", "response_b": "y", "outcome": "tie"})
            + "\n"
            for i in range(4)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    res = _run("pairs", str(src), str(out), code=1)
    msg = str(res.exception)
    assert "no pair to write (4 rows in, 4 candidates; tie_dropped 4" in msg
    assert not out.exists()
    assert (
        json.loads((tmp_path / "out.jsonl.build.json").read_text())["dropped"]["tie_dropped"] == 4
    )


def test_split_that_leaves_a_part_empty_stops(tmp_path: Path) -> None:
    src = tmp_path / "one_annotator.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": f"q{i}",
                    "response_a": "x",
                    "response_b": "y",
                    "outcome": "a",
                    "annotator": "ann",
                }
            )
            + "\n"
            for i in range(10)
        ),
        encoding="utf-8",
    )
    res = _run("split", str(src), str(tmp_path / "s"), "--by", "annotator", code=1)
    msg = str(res.exception)
    assert "would be empty (train 0 rows, test 10 rows; 1 group(s) by annotator)" in msg or (
        "would be empty (train 10 rows, test 0 rows; 1 group(s) by annotator)" in msg
    )
    assert not (tmp_path / "s" / "train.parquet").exists()
    _run("split", str(src), str(tmp_path / "s"), "--by", "annotator", "--allow-empty")
    total = sum(pq.read_table(tmp_path / "s" / f"{p}.parquet").num_rows for p in ("train", "test"))
    assert total == 10


def test_margin_from_scores(tmp_path: Path) -> None:
    src = REPO / "tests" / "data" / "layouts" / "ultrafeedback_binarized.parquet"
    raw = pq.read_table(src).to_pylist()  # independent reference: the file's own columns
    want = {r["chosen"][1]["content"]: r["score_chosen"] - r["score_rejected"] for r in raw}
    out = tmp_path / "m.jsonl"
    res = _run("pairs", str(src), str(out), "--to", "trl", "--margin", "scores", "--json")
    assert json.loads(res.stdout.strip().splitlines()[-1])["no_scores"] == 0
    got = {r["chosen"]: r["margin"] for r in _jsonl(out)}
    assert got == want
    _run("pairs", str(src), str(tmp_path / "v.jsonl"), "--to", "trl")
    assert {r["margin"] for r in _jsonl(tmp_path / "v.jsonl")} == {1.0}  # one vote each
    # --min-margin filters on the score margin
    res = _run(
        "pairs",
        str(src),
        str(tmp_path / "f.jsonl"),
        "--margin",
        "scores",
        "--min-margin",
        "5",
        "--json",
    )
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    assert rep["dropped"]["below_margin"] == sum(1 for d in want.values() if d < 5)
