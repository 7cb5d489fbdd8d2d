from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io import save
from prefkit.reward.data import pairs_from_table
from prefkit.reward.embed import embed_texts, embed_with_stats
from prefkit.reward.models import load_model
from prefkit.schema import Kind
from prefkit.simulate import simulate

pytestmark = [pytest.mark.slow, pytest.mark.train]
runner = CliRunner()


def test_embed_cache_and_truncation_counted(tmp_path: Path) -> None:
    texts = [
        "the cat sat on the mat",
        "word " * 400,
        "a feline rested on a rug",
        "stock prices fell",
    ]
    with pytest.warns(UserWarning, match="1 of 4 texts exceed the encoder limit of 256 tokens"):
        v, st = embed_with_stats(texts, cache_dir=tmp_path)
    assert v.shape == (4, 384) and st.truncated == 1 and st.truncated_rows == [1]
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 2] > sim[0, 3]  # paraphrase closer than an unrelated sentence
    v2, st2 = embed_with_stats(texts[:1] + texts[2:], cache_dir=tmp_path)
    assert st2.cache_hits == 3 and np.allclose(v2, v[[0, 2, 3]])
    with pytest.warns(UserWarning, match="1 of 4 texts"):  # a cache hit is still counted
        _, st3 = embed_with_stats(texts, cache_dir=tmp_path)
    assert st3.cache_hits == 4 and st3.truncated_rows == [1]
    assert np.allclose(embed_texts(texts[:1]), v[:1], atol=1e-5)
    # every text cached: the encoder is not loaded (a fresh process has no model in memory)
    from prefkit.reward.embed import load_encoder

    load_encoder.cache_clear()
    with pytest.warns(UserWarning, match="limit of 256 tokens"):
        v4, st4 = embed_with_stats(texts, cache_dir=tmp_path)
    assert load_encoder.cache_info().currsize == 0
    assert st4.cache_hits == 4 and st4.max_tokens == 256 and np.array_equal(v4, v)
    v5, _ = embed_with_stats(texts + ["a new sentence"], cache_dir=tmp_path)  # one miss: loads
    assert load_encoder.cache_info().currsize == 1 and np.array_equal(v5[:4], v)


def test_embed_rm_cli_end_to_end_counts_truncation_and_empty(tmp_path: Path) -> None:
    """Small subset (the full-data numbers live in benchmarks/): train with the CLI, then check
    the saved model reproduces its card, `score` and `eval` agree, and nothing is silent."""
    t = simulate("clean", size=120, seed=5).tables[Kind.COMPARISONS]
    rows = t.to_pylist()
    rows[0]["response_a"] = [{"role": "assistant", "content": "very long answer " * 200}]
    rows[1]["response_b"] = [{"role": "assistant", "content": ""}]
    f = save(pa.Table.from_pylist(rows, schema=t.schema), tmp_path / "d.parquet")
    out = tmp_path / "emb"
    cache = tmp_path / "cache"
    r = runner.invoke(
        app, ["rm", "train", str(f), str(out), "--backend", "embed", "--cache-dir", str(cache)]
    )
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())  # rich wraps long lines
    assert "texts exceed the model's token limit and were truncated" in said
    assert "1 empty responses" in said and "rows left out (both_bad)" in said
    card = json.loads((out / "model.json").read_text())
    tr = card["training"]
    assert card["backend"] == "embed" and tr["truncated_texts"] >= 1
    assert card["data"]["empty_responses"] == 1
    assert 1 <= tr["best_epoch"] < 100 and len(tr["l2_path"]) == 7
    assert tr["val_log_loss"] == min(x["val_log_loss"] for x in tr["l2_path"])
    scored = tmp_path / "s.parquet"
    r = runner.invoke(app, ["rm", "score", str(out), str(f), str(scored)])
    assert r.exit_code == 0, r.output
    assert "were truncated" in " ".join(r.output.split())
    s = pq.read_table(scored)
    model = load_model(out)
    p = pairs_from_table(s)
    assert np.allclose(s.column("reward_a").to_numpy(), model.score(p.prompts, p.a), atol=1e-5)
    r = runner.invoke(app, ["rm", "eval", str(out), str(f), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["truncated_texts"] >= 1 and res["empty_responses"] == 1
    n = res["model"]["accuracy"]["n"]
    assert n == res["length_baseline"]["accuracy"]["n"] == res["random_baseline"]["accuracy"]["n"]
    assert res["baseline_tie_thresholds"]["fitted_on"] == "validation data"
