"""The vectorised battles path (arena, LLMFAO, canonical names, --map) gives exactly the
per-row path's table and rejects, from Parquet, CSV and JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prefkit.io.readers  # noqa: F401
from prefkit.io.base import READERS, ReadOptions, ReadResult
from prefkit.io.detect import read
from prefkit.io.readers._base import RecordReader
from tests.conftest import DATA


def _per_row(path: Path, name: str, options: ReadOptions | None = None) -> ReadResult:
    reader = READERS[name]
    assert isinstance(reader, RecordReader)
    res = reader.read_rows(path, options or ReadOptions())
    if name == "generic":  # GenericReader.read drops empty kinds
        res.tables = {k: t for k, t in res.tables.items() if t.num_rows}
    return res


def _same(path: Path, name: str, options: ReadOptions | None = None) -> ReadResult:
    """Read through the reader (vectorised where it can) and row by row: same result."""
    opts = options or ReadOptions()
    fast = read(path, name, opts)
    slow = _per_row(path, name, opts)
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert [(r.line, r.field, r.reason, r.raw) for r in fast.rejects] == [
        (r.line, r.field, r.reason, r.raw) for r in slow.rejects
    ]
    assert fast.rows_in == slow.rows_in
    return fast


def _csv(path: Path, cols: dict[str, list[Any]]) -> Path:
    import csv

    names = list(cols)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(len(cols[names[0]])):
            w.writerow(["" if cols[c][i] is None else cols[c][i] for c in names])
    return path


def _jsonl(path: Path, cols: dict[str, list[Any]]) -> Path:
    names = list(cols)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(len(cols[names[0]])):
            fh.write(json.dumps({c: cols[c][i] for c in names}) + "\n")
    return path


def test_llmfao_shared_file_is_vectorised() -> None:
    path = DATA / "llmfao/llmfao.csv"
    res = _same(path, "llmfao")
    with path.open(encoding="utf-8") as fh:
        lines = sum(1 for line in fh if line.strip()) - 1  # header
    assert res.table.num_rows == lines
    assert res.rows_vectorised == lines


ARENA: dict[str, list[Any]] = {
    "question_id": ["q1", "q1", "q2", "q3", None],
    "model_a": ["gpt-4", "claude", "gpt-4", "vicuna", "gpt-4"],
    "model_b": ["vicuna", "gpt-4", "claude", "claude", "claude"],
    "winner": ["model_a", "tie (bothbad)", " Tie ", "model_b", "B"],
    "judge": ["u1", "", None, "u3", "u1"],
    "annotator": ["x", "y", "z", None, None],
    "turn": [1, 1, 2, 1, 3],
    "tstamp": [1.5, 2.0, 1e-5, 100.0, None],
    "anony": [True, False, True, None, True],
    "language": ["English", "中文", "", None, "English"],
}


@pytest.mark.parametrize("container", ["parquet", "csv", "jsonl"])
def test_arena_all_containers(tmp_path: Path, container: str) -> None:
    path = tmp_path / f"arena.{container}"
    if container == "parquet":
        pq.write_table(pa.table(ARENA), path)
    elif container == "csv":
        _csv(path, ARENA)
    else:
        _jsonl(path, ARENA)
    res = _same(path, "arena")
    assert read(path).reader == "arena"
    assert [r["outcome"] for r in res.table.to_pylist()] == ["a", "both_bad", "tie", "b", "b"]
    rows = res.table.to_pylist()
    # judge, else annotator (an empty judge passes on); annotator also stays in meta
    assert [r["annotator"] for r in rows][:3] == ["u1", "y", "z"]
    assert rows[0]["prompt_id"] == "arena:q1"
    if container == "parquet":
        assert (
            dict(rows[0]["meta"])["tstamp"] == "1.5" and dict(rows[1]["meta"])["anony"] == "false"
        )
        assert "tstamp" not in dict(rows[4]["meta"])  # nulls are left out, as per row
    if container != "jsonl":  # JSON lines with an int column of floats: per row (see _fast)
        assert res.rows_vectorised == 5


def test_bad_values_are_rejected_the_rest_vectorised(tmp_path: Path) -> None:
    bad = dict(ARENA)
    bad["winner"] = ["model_a", "nobody", "tie", "", "model_b"]
    bad["model_b"] = ["vicuna", "gpt-4", " ", "claude", "claude"]
    pq.write_table(pa.table(bad), tmp_path / "bad.parquet")
    res = _same(tmp_path / "bad.parquet", "arena")
    assert res.table.num_rows == 2 and res.rows_vectorised == 2
    assert [(r.line, r.field) for r in res.rejects] == [
        (2, "winner"),
        (3, "model_b"),
        (4, "winner"),
    ]
    # CSV: reject lines are file lines (header = 1), also with blank lines and a quoted newline
    text = (
        "model_a,model_b,winner,note\n"
        "a,b,model_a,x\n"
        "\n"
        'a,b,nobody,"two\nlines"\n'
        "a,b,tie,y\n"
        "a,,model_b,z\n"
    )
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    res = _same(tmp_path / "bad.csv", "arena")
    assert [(r.line, r.field) for r in res.rejects] == [(5, "winner"), (7, "model_b")]
    assert [r["id"] for r in res.table.to_pylist()] == ["arena:bad:1", "arena:bad:3"]


def test_strict_stops_at_the_first_bad_row_with_its_line(tmp_path: Path) -> None:
    from prefkit.io.base import StrictError

    (tmp_path / "b.csv").write_text(
        "model_a,model_b,winner\nx,y,model_a\n\nx,y,maybe\n", encoding="utf-8"
    )
    with pytest.raises(StrictError) as e:
        read(tmp_path / "b.csv", None, ReadOptions(strict=True))
    assert e.value.line == 4 and e.value.field == "winner"


CANON: dict[str, list[Any]] = {
    "model_a": ["m1", "m2", "m3", "m1"],
    "model_b": ["m2", "m3", "m1", "m3"],
    "outcome": ["a", "B", "tie", "both_bad"],
    "prompt": ["What is 2+2?", None, "", "What is 2+2?"],
    "annotator": ["ann1", "ann2", None, "ann1"],
    "extra": [1, 2, 3, 4],
}


@pytest.mark.parametrize("container", ["parquet", "csv", "jsonl"])
def test_canonical_battles_need_no_map(tmp_path: Path, container: str) -> None:
    path = tmp_path / f"battles.{container}"
    if container == "parquet":
        pq.write_table(pa.table(CANON), path)
    elif container == "csv":
        _csv(path, CANON)
    else:
        _jsonl(path, CANON)
    auto = read(path)
    assert auto.reader == "generic" and "model battles" in auto.why
    res = _same(path, "generic")
    rows = res.table.to_pylist()
    assert [r["outcome"] for r in rows] == ["a", "b", "tie", "both_bad"]
    assert rows[0]["prompt"] == [{"role": "user", "content": "What is 2+2?"}]
    assert rows[1]["prompt"] is None and rows[2]["prompt"] is None  # blank = no prompt
    assert rows[0]["prompt_id"] == rows[3]["prompt_id"] != rows[1]["prompt_id"]
    from prefkit.schema import prompt_id

    assert rows[0]["prompt_id"] == prompt_id("What is 2+2?")
    assert rows[1]["prompt_id"] == prompt_id(None)
    assert dict(rows[0]["meta"]) == {"extra": "1"}
    assert res.rows_vectorised == 4


def test_mapped_columns_and_value_maps(tmp_path: Path) -> None:
    cols = {
        "left_model": ["x", "y", "z"],
        "right_model": ["y", "z", "x"],
        "verdict": ["L", "R", "="],
        "rater": [7, 8, 9],
        "q": ["p1", "p2", "p1"],
    }
    pq.write_table(pa.table(cols), tmp_path / "m.parquet")
    opts = ReadOptions(
        mapping={
            "left_model": "model_a",
            "right_model": "model_b",
            "verdict": "outcome",
            "rater": "annotator",
            "q": "prompt_id",
        },
        value_maps={"outcome": {"L": "a", "R": "b", "=": "tie"}},
    )
    res = _same(tmp_path / "m.parquet", "generic", opts)
    rows = res.table.to_pylist()
    assert [r["outcome"] for r in rows] == ["a", "b", "tie"]
    assert [r["annotator"] for r in rows] == ["7", "8", "9"]
    assert [r["prompt_id"] for r in rows] == ["p1", "p2", "p1"]
    assert res.rows_vectorised == 3


name_text = st.text(alphabet=st.sampled_from("ab \t\u3000\x1cé,\"'\n"), max_size=4)
outcomes = st.sampled_from(
    ["model_a", "MODEL_B", " tie ", "tie (bothbad)", "a", "b", "both_bad", "", "x", "\x1ctie"]
)
battle_rows = st.lists(
    st.fixed_dictionaries(
        {
            "model_a": st.none() | name_text,
            "model_b": st.none() | name_text,
            "winner": st.none() | outcomes,
            "judge": st.none() | name_text,
            "question_id": st.none() | st.integers(0, 3),
            "note": st.none() | name_text,
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=battle_rows, as_csv=st.booleans())
def test_random_battles_match_the_per_row_reader(
    tmp_path: Path, rows: list[dict[str, Any]], as_csv: bool
) -> None:
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    if as_csv:
        path = _csv(tmp_path / "r.csv", cols)
    else:
        path = tmp_path / "r.parquet"
        pq.write_table(pa.table(cols), path)
    _same(path, "arena")
