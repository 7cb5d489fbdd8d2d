"""The TRL export trains: `datasets` loads it, TRL's DPOTrainer and RewardTrainer prepare it
and run a few steps on a tiny Llama built from a config with a BPE tokenizer trained here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io.canonical import save
from prefkit.schema import Kind
from tests.build._data import pandalm_votes
from tests.tiny_lm import tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.train]

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


def _export(tmp: Path, *extra: str) -> Path:
    src = save(pandalm_votes()[0].slice(0, 90), tmp / "in.parquet", Kind.COMPARISONS)
    out = tmp / ("conv.jsonl" if extra else "trl.jsonl")
    res = CliRunner().invoke(app, ["pairs", str(src), str(out), "--to", "trl", "--json", *extra])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp / (out.name + ".build.json")).read_text())["rows_out"] >= 20
    return out


def _tokenizer(texts: list[str]) -> Any:
    hf = tokenizer(texts, vocab=1000)
    hf.chat_template = CHAT_TEMPLATE
    return hf


def _config(tok: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )


def _texts(ds: Any) -> list[str]:
    out = []
    for row in ds:
        for k in ("prompt", "chosen", "rejected"):
            v = row[k]
            out.append(v if isinstance(v, str) else " ".join(m["content"] for m in v))
    return out


def test_trl_export_trains_dpo_and_reward_model(tmp_path: Path) -> None:
    import datasets
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    path = _export(tmp_path)
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected", "margin", "weight"} <= set(ds.column_names)
    assert isinstance(ds[0]["prompt"], str)
    tok = _tokenizer(_texts(ds))
    torch.manual_seed(0)
    common: dict[str, Any] = dict(
        max_steps=3,
        per_device_train_batch_size=4,
        report_to=[],
        logging_steps=1,
        max_length=1024,
        save_strategy="no",
        use_cpu=True,
        learning_rate=1e-3,
    )
    policy = LlamaForCausalLM(_config(tok))
    dpo = DPOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), **common),
        train_dataset=ds,
        processing_class=tok,
    )
    out = dpo.train()
    assert dpo.state.global_step == 3 and out.training_loss == out.training_loss  # not NaN
    losses = [h["loss"] for h in dpo.state.log_history if "loss" in h]
    assert len(losses) == 3 and losses[-1] < losses[0]  # DPO learns the chosen side

    conv = datasets.load_dataset(
        "json", data_files=str(_export(tmp_path, "--conversational")), split="train"
    )
    assert conv[0]["chosen"][0]["role"] == "assistant"
    cfg = _config(tok)
    cfg.num_labels = 1
    rm = RewardTrainer(
        model=LlamaForSequenceClassification(cfg),
        args=RewardConfig(output_dir=str(tmp_path / "rm"), **common),
        train_dataset=conv,
        processing_class=tok,
    )
    out = rm.train()
    assert rm.state.global_step == 3 and out.training_loss == out.training_loss


def test_kto_export_trains_with_reported_class_weights(tmp_path: Path) -> None:
    import datasets
    import torch
    from transformers import LlamaForCausalLM
    from trl import KTOConfig, KTOTrainer

    src = save(pandalm_votes()[0].slice(0, 90), tmp_path / "in.parquet", Kind.COMPARISONS)
    out = tmp_path / "kto.jsonl"
    res = CliRunner().invoke(app, ["pairs", str(src), str(out), "--to", "kto", "--json"])
    assert res.exit_code == 0, res.output
    kto = json.loads(res.stdout.strip().splitlines()[-1])["unpaired"]["kto"]
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert set(ds["label"]) == {True, False} and len(ds) == kto["desirable"] + kto["undesirable"]
    tok = _tokenizer([x for row in ds for x in (row["prompt"], row["completion"])])
    torch.manual_seed(0)
    model = LlamaForCausalLM(_config(tok))
    trainer = KTOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=KTOConfig(
            output_dir=str(tmp_path / "kto"),
            max_steps=3,
            per_device_train_batch_size=4,
            report_to=[],
            logging_steps=1,
            max_length=1024,
            save_strategy="no",
            use_cpu=True,
            learning_rate=1e-3,
            desirable_weight=kto["desirable_weight"],
            undesirable_weight=kto["undesirable_weight"],
        ),
        train_dataset=ds,
        processing_class=tok,
    )
    out_state = trainer.train()
    assert trainer.state.global_step == 3 and out_state.training_loss == out_state.training_loss
