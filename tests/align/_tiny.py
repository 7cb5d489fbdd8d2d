"""Tiny causal LMs for the align tests: a 2-layer Llama built from a config with a byte-level
BPE tokenizer trained here on the test texts (no hub access), saved as a local checkpoint."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from tests.conftest import DATA

HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"
PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"


def tokenizer(texts: list[str], vocab: int = 500) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab,
            special_tokens=["<pad>", "<unk>", "<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def model(tok: Any, hidden: int = 32, layers: int = 2, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return LlamaForCausalLM(cfg)


def checkpoint(texts: list[str], out: Path, hidden: int = 32, layers: int = 2) -> Path:
    """Train a tokenizer on `texts`, build the tiny model, save both to `out`."""
    tok = tokenizer(texts)
    model(tok, hidden, layers).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def hh_rows(n: int | None = None) -> list[dict[str, Any]]:
    """HH-RLHF harmless-base test as TRL rows via the io and build stages (prefix = prompt)."""
    from prefkit.build import build_pairs
    from prefkit.build.export import to_trl
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    res = read(HH_HARMLESS)
    table = res.tables[Kind.COMPARISONS]
    if n is not None:
        table = table.slice(0, n)
    rows: list[dict[str, Any]] = to_trl(build_pairs(table).table, conversational=False).to_pylist()
    return rows


def raw_hh_texts(n: int) -> list[str]:
    out = []
    with gzip.open(HH_HARMLESS, "rt", encoding="utf-8") as fh:
        for k, line in enumerate(fh):
            if k >= n:
                break
            rec = json.loads(line)
            out += [rec["chosen"], rec["rejected"]]
    return out


def texts_of(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r[k]) for r in rows for k in ("prompt", "chosen", "rejected")]
