"""explain's feature pass runs batch by batch: the feature matrices and the votes equal the
whole-table computation on real PandaLM votes, texts are dropped when no later part needs
them, and `prefkit explain` on canonical Parquet (read batch by batch) gives the effects of
the whole table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefkit.audit.frame import joined_text
from prefkit.explain.data import votes_from_batches, votes_from_table
from prefkit.explain.effects import EffectOptions
from prefkit.explain.features import text_features
from prefkit.explain.run import ExplainOptions, effects_table, explain_table
from prefkit.io.canonical import load, save
from prefkit.io.detect import read
from tests.conftest import DATA


@pytest.fixture(scope="module")
def pandalm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pandalm") / "pandalm.parquet"
    save(read(DATA / "pandalm_testset/data/testset-v1.json").table, out)
    return out


def test_feature_pass_per_batch_equals_whole_table(pandalm: Path) -> None:
    table = load(pandalm)
    batches = [table.slice(i, 250) for i in range(0, table.num_rows, 250)]
    v = votes_from_batches(batches, keep_text=False)
    whole = votes_from_table(table)
    assert v.ids == whole.ids and v.rows_in == table.num_rows == 2997
    assert np.array_equal(v.rows, whole.rows) and np.array_equal(v.y, whole.y)
    assert np.array_equal(v.group, whole.group) and v.by == whole.by
    assert v.skipped == whole.skipped
    # reference: the features of every used row, computed in one call over the whole column
    used = table.take(whole.rows)
    prompt = joined_text(used.column("prompt"))
    xa, _ = text_features(prompt, joined_text(used.column("response_a")))
    xb, _ = text_features(prompt, joined_text(used.column("response_b")))
    assert v.xa is not None and v.xb is not None
    assert np.array_equal(v.xa, xa) and np.array_equal(v.xb, xb)
    assert v.a.null_count == v.n and whole.a.null_count == 0  # text dropped / kept


def test_cli_on_canonical_parquet_equals_whole_table(pandalm: Path, tmp_path: Path) -> None:
    path = save(load(pandalm).slice(0, 400), tmp_path / "pandalm400.parquet")  # keeps it fast
    out = tmp_path / "ex"
    res = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "explain", str(path), "--out", str(out),
         "--directions", "0", "--rounds", "5", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "streamed" in res.stderr
    want = explain_table(load(path), ExplainOptions(effects=EffectOptions(rounds=5), directions=0))
    got = json.loads(res.stdout)
    assert got["input"] == want.summary["input"]
    assert got["features"] == json.loads(json.dumps(want.summary["features"]))
    assert pq.read_table(out / "effects.parquet").equals(effects_table(want.rows))
