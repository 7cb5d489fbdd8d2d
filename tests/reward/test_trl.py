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


def test_trl_reward_trainer_loss_decreases_and_scores(tmp_path: Path) -> None:
    t = simulate("clean", size=120, seed=2).tables[Kind.COMPARISONS]
    texts = [
        messages_text(x)
        for c in ("prompt", "response_a", "response_b")
        for x in t.column(c).to_pylist()
    ]
    base = tiny_causal_lm(texts, tmp_path / "tiny")
    f = save(t, tmp_path / "d.parquet")
    out = tmp_path / "rm"
    r = CliRunner().invoke(
        app,
        [
            "rm",
            "train",
            str(f),
            str(out),
            "--backend",
            "trl",
            "--base",
            str(base),
            "--epochs",
            "2",
            "--seed",
            "0",
        ],
    )
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model.json").read_text())
    losses = card["training"]["losses"]
    assert len(losses) >= 10
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    assert card["training"]["dropped_ties"] >= 0 and card["backend"] == "trl"
    scored = tmp_path / "s.parquet"
    r = CliRunner().invoke(app, ["rm", "score", str(out), str(f), str(scored)])
    assert r.exit_code == 0, r.output
    s = pq.read_table(scored)
    ra = np.array(s.column("reward_a").to_pylist())
    assert np.isfinite(ra).all() and ra.std() > 0
