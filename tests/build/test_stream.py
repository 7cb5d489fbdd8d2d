"""`prefkit pairs` on canonical Parquet builds without holding the file's text
(build/stream.py): the pairs and the report equal the whole-table build, on real PandaLM votes
(three annotators, ties, weights, margins), on votes scattered over many batches, on simulated
thumbs and rankings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.build.export import to_trl
from prefkit.build.pairs import build_pairs
from prefkit.build.stream import light_table, rankings_batches, restore
from prefkit.io.canonical import load, save
from prefkit.io.detect import read
from prefkit.schema import Kind
from prefkit.simulate import simulate
from tests.conftest import DATA


@pytest.fixture(scope="module")
def pandalm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pandalm") / "pandalm.parquet"
    save(read(DATA / "pandalm_testset/data/testset-v1.json").table, out)
    return out


def _streamed(path: Path, kind: Kind, batch_rows: int, **kw: Any) -> tuple[pa.Table, dict]:
    light = light_table(path, kind, batch_rows=batch_rows)
    built = build_pairs(light.table, **kw)
    parts = list(restore(path, kind, light, built, batch_rows=batch_rows))
    return pa.concat_tables(parts), built.report


@pytest.mark.parametrize(
    "kw",
    [
        {"ties": "half"},
        {"ties": "keep", "min_margin": 0.5},
        {"strategy": "mean-strength", "ties": "half"},
    ],
)
def test_pandalm_votes_equal_whole_build(pandalm: Path, kw: dict[str, Any]) -> None:
    whole = build_pairs(load(pandalm), **kw)
    table, report = _streamed(pandalm, Kind.COMPARISONS, batch_rows=300, **kw)
    assert report == whole.report
    assert table.equals(whole.table)
    assert whole.table.num_rows > 500
    if kw["ties"] != "drop":
        assert pa.compute.sum(whole.table.column("tie")).as_py() > 0
    assert len(set(table.column("weight").to_pylist())) > 1  # agreement-weighted


def test_scattered_votes_are_held_until_their_pair_is_written(
    pandalm: Path, tmp_path: Path
) -> None:
    """Rows shuffled: a pair's first vote and its last are in different batches."""
    t = load(pandalm)
    t = t.take(pa.array(np.random.default_rng(3).permutation(t.num_rows)))
    path = save(t, tmp_path / "shuffled.parquet")
    whole = build_pairs(load(path), ties="half")
    table, report = _streamed(path, Kind.COMPARISONS, batch_rows=97, ties="half")
    assert report == whole.report and table.equals(whole.table)


def test_simulated_binary_and_rankings(tmp_path: Path) -> None:
    sim = simulate("ratings", size=600, seed=2)
    binary = sim.tables[Kind.BINARY]
    binary = binary.take(pa.array(np.random.default_rng(0).permutation(binary.num_rows)))
    path = save(binary, tmp_path / "binary.parquet")
    whole = build_pairs(load(path))
    table, report = _streamed(path, Kind.BINARY, batch_rows=64)
    assert report == whole.report and table.equals(whole.table) and table.num_rows > 0

    ranks = save(simulate("rankings", size=400, seed=2).tables[Kind.RANKINGS], tmp_path / "r.pq")
    whole = build_pairs(load(ranks), "adjacent", "half")
    batches, rep = rankings_batches(ranks, lambda t: build_pairs(t, "adjacent", "half"), None, 64)
    got = pa.concat_tables(list(batches))
    assert rep == whole.report and got.equals(whole.table)


def test_cli_trl_output_equals_whole_table_export(pandalm: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.parquet"
    res = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "pairs", str(pandalm), str(out), "--ties", "keep",
         "--to", "trl", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "streamed" in res.stderr
    whole = build_pairs(load(pandalm), ties="keep")
    assert pq.read_table(out).equals(to_trl(whole.table))
    report = json.loads(res.stdout)
    assert report["rows_written"] == whole.report["rows_out"]
    assert report["warnings"] and "tie" in report["warnings"][0]
    assert not list(tmp_path.glob(".*"))  # no partial file left
