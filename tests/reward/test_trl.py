from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io import save
from prefkit.schema import Kind, messages_text
from prefkit.simulate import simulate

pytestmark = [pytest.mark.slow, pytest.mark.train]


def tiny_causal_lm(texts: list[str], out: Path) -> Path:
    """A 2-layer Llama built from a config with a BPE tokenizer trained on `texts`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel()
    tk.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<eos>"])
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tok.save_pretrained(out)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("trl")
    t = simulate("clean", size=90, seed=2).tables[Kind.COMPARISONS]
    texts = [
        messages_text(x)
        for c in ("prompt", "response_a", "response_b")
        for x in t.column(c).to_pylist()
    ]
    return tiny_causal_lm(texts, tmp / "tiny"), save(t, tmp / "d.parquet")


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
    assert len(losses) >= 10
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    assert card["backend"] == "trl" and tr["max_length"] == 256
    # TRL filters pairs over max_length tokens: counted in the card and said on the console
    assert 0 <= tr["dropped_too_long"] < tr["train_pairs"]
    if tr["dropped_too_long"]:
        assert f"{tr['dropped_too_long']} training pairs" in " ".join(r.output.split())
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
    assert card["lora"] is True and len(card["training"]["losses"]) >= 5
    from prefkit.reward.models import load_model

    m = load_model(out)  # merged weights load as a plain sequence classifier
    s = m.score(["What is the capital of France?"] * 2, ["Paris.", "I cannot help with that."])
    assert np.isfinite(s).all()
