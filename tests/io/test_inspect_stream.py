"""`inspect` on canonical Parquet reads batch by batch: the summary equals the one of the
whole table, and plain-Python counts over the rows (real PandaLM, simulated ratings/binary)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.io.canonical import iter_canonical, load, save
from prefkit.io.detect import read
from prefkit.io.stats import Describer, describe
from prefkit.schema import Kind, normalize_text
from prefkit.simulate import simulate
from tests.conftest import DATA
from tests.io._util import cli, inspect_json


def _streamed(path: Path, kind: Kind, batch_rows: int) -> dict[str, Any]:
    d = Describer(kind)
    for b in iter_canonical(path, kind, batch_rows=batch_rows):
        d.add(b)
    return d.result()


def _text(msgs: Any) -> str:
    return "".join(m["content"] or "" for m in msgs)


def _reference(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts computed in plain Python over the rows (no prefkit code)."""
    out: dict[str, Any] = {
        "rows": len(rows),
        "prompts": len({r["prompt_id"] for r in rows}),
        "annotators": len({r["annotator"] for r in rows if r["annotator"] is not None}),
        "sources": sorted({r["source"] for r in rows if r["source"] is not None}),
    }
    lens = [len(_text(r["response_a"])) for r in rows if r["response_a"] is not None]
    out["p50_a"] = float(np.quantile(np.array(lens, dtype=np.float64), 0.5))
    out["max_a"] = float(max(lens))
    return out


@pytest.fixture(scope="module")
def pandalm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pandalm") / "pandalm.parquet"
    save(read(DATA / "pandalm_testset/data/testset-v1.json").table, out)
    return out


def test_pandalm_streamed_equals_whole_and_reference(pandalm: Path) -> None:
    whole = describe(load(pandalm))
    streamed = _streamed(pandalm, Kind.COMPARISONS, batch_rows=256)  # 12 batches
    assert streamed == whole
    rows = pq.read_table(pandalm).to_pylist()
    ref = _reference(rows)
    assert streamed["rows"] == ref["rows"] == 2997
    assert streamed["prompts"] == ref["prompts"]
    assert streamed["annotators"] == ref["annotators"] == 3
    assert streamed["sources"] == ref["sources"]
    assert streamed["text_length_chars"]["response_a"]["p50"] == ref["p50_a"]
    assert streamed["text_length_chars"]["response_a"]["max"] == ref["max_a"]
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    assert {k: v for k, v in streamed["outcomes"].items() if v} == outcomes
    assert outcomes["tie"] > 0
    same = sum(
        normalize_text(" ".join(m["content"] or "" for m in r["response_a"]))
        == normalize_text(" ".join(m["content"] or "" for m in r["response_b"]))
        for r in rows
        if r["response_a"] is not None and r["response_b"] is not None
    )
    assert streamed["identical_responses"] == same


def test_cli_inspect_canonical_json(pandalm: Path) -> None:
    s = inspect_json(pandalm)
    want = describe(load(pandalm))
    want.update(reader="canonical", rejected=0)
    assert s == want
    shown = cli("inspect", pandalm)
    assert shown.exit_code == 0 and "streamed" in shown.output


def test_simulated_ratings_and_binary(tmp_path: Path) -> None:
    sim = simulate("ratings", size=1000, seed=1)
    for kind in (Kind.RATINGS, Kind.BINARY):
        path = save(sim.tables[kind], tmp_path / f"{kind.value}.parquet")
        streamed = _streamed(path, kind, batch_rows=128)
        assert streamed == describe(load(path))
        rows = pq.read_table(path).to_pylist()
        assert streamed["prompts"] == len({r["prompt_id"] for r in rows})
        if kind is Kind.RATINGS:
            scores = sorted({r["score"] for r in rows if r["score"] is not None})
            h = streamed["scores"]
            if "values" in h:
                assert h["values"] == scores
            assert sum(h["counts"]) == sum(r["score"] is not None for r in rows)
        else:
            up = sum(1 for r in rows if r["label"])
            assert streamed["labels"] == {"true": up, "false": len(rows) - up}


def test_bad_row_in_a_later_batch_names_its_row(tmp_path: Path, pandalm: Path) -> None:
    t = pq.read_table(pandalm)
    outcome = t.column("outcome").to_pylist()
    outcome[1039] = "left"  # in the 5th row group (and batch) of 256 rows
    bad = t.set_column(t.schema.get_field_index("outcome"), "outcome", pa.array(outcome))
    path = tmp_path / "bad.parquet"
    pq.write_table(bad, path, row_group_size=256)
    res = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: ") and "Traceback" not in res.stderr
    assert "line 1039, field 'outcome': 'left' is not one of" in res.stderr
    assert res.stdout == ""  # no summary printed
    with pytest.raises(ValueError, match="line 1039, field 'outcome'"):
        load(path)  # the whole-table reader names the same row
