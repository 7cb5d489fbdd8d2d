from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io import save
from prefkit.schema import Kind, messages_text
from prefkit.simulate import simulate
from tests.tiny_lm import checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.train]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("trl")
    t = simulate("clean", size=90, seed=2).tables[Kind.COMPARISONS]
    texts = [
        messages_text(x)
        for c in ("prompt", "response_a", "response_b")
        for x in t.column(c).to_pylist()
    ]
    # vocab 600: a few of the longest pairs exceed the 256-token limit (the count is tested)
    base = checkpoint(texts, tmp / "tiny", hidden=32, layers=2, vocab=600, max_positions=512)
    return base, save(t, tmp / "d.parquet")


def test_trl_reward_trainer_loss_decreases_and_scores(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    base, f = tiny
    out = tmp_path / "rm"
    r = CliRunner().invoke(
        app,
        ["rm", "train", str(f), str(out), "--backend", "trl", "--base", str(base)]
        + ["--epochs", "2", "--seed", "0"],
    )
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model.json").read_text())
    tr = card["training"]
    losses = tr["losses"]
    assert card["backend"] == "trl" and tr["max_length"] == 256 and tr["epochs"] == 2
    # TRL filters pairs over max_length tokens: counted in the card and said on the console
    assert 0 < tr["dropped_too_long"] < tr["train_pairs"]
    assert f"{tr['dropped_too_long']} training pairs" in " ".join(r.output.split())
    # one logged loss per optimizer step: every kept pair is trained on, in each epoch
    kept = tr["train_pairs"] - tr["dropped_too_long"]
    assert kept > tr["train_pairs"] // 2  # the length filter leaves most pairs
    assert len(losses) == tr["epochs"] * math.ceil(kept / tr["batch_size"]) >= 8
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    # TRL has no soft labels: ties are dropped and counted; every training row is accounted for
    assert tr["dropped_ties"] > 0
    assert tr["train_pairs"] + tr["dropped_ties"] == card["data"]["train_rows"]
    scored = tmp_path / "s.parquet"
    r = CliRunner().invoke(app, ["rm", "score", str(out), str(f), str(scored)])
    assert r.exit_code == 0, r.output
    s = pq.read_table(scored)
    ra = np.array(s.column("reward_a").to_pylist())
    assert np.isfinite(ra).all() and ra.std() > 0
    r = CliRunner().invoke(app, ["rm", "eval", str(out), str(f), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["model"]["accuracy"]["n"] == res["length_baseline"]["accuracy"]["n"] > 50


def test_trl_lora_adapters_train_and_merge(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, f = tiny
    out = tmp_path / "lora"
    r = CliRunner().invoke(
        app,
        ["rm", "train", str(f), str(out), "--backend", "trl", "--base", str(base), "--lora"],
    )
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model.json").read_text())
    tr = card["training"]
    kept = tr["train_pairs"] - tr["dropped_too_long"]
    assert card["lora"] is True and tr["epochs"] == 1 and kept > tr["train_pairs"] // 2
    assert len(tr["losses"]) == math.ceil(kept / tr["batch_size"])  # a loss every step
    assert all(math.isfinite(x) for x in tr["losses"])
    from prefkit.reward.models import load_model

    m = load_model(out)  # merged weights load as a plain sequence classifier
    s = m.score(["What is the capital of France?"] * 2, ["Paris.", "I cannot help with that."])
    assert np.isfinite(s).all()
