"""Tiny causal LMs for tests that train: a 2-layer Llama built from a config with a byte-level
BPE tokenizer trained here on the test texts (no hub access), saved as a local checkpoint.
Used by the build, reward and align tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def model(
    tok: Any, hidden: int = 32, layers: int = 2, seed: int = 0, max_positions: int = 2048
) -> Any:
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
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return LlamaForCausalLM(cfg)


def checkpoint(
    texts: list[str],
    out: Path,
    hidden: int = 32,
    layers: int = 2,
    vocab: int = 500,
    max_positions: int = 2048,
) -> Path:
    """Train a tokenizer on `texts`, build the tiny model, save both to `out`."""
    tok = tokenizer(texts, vocab)
    model(tok, hidden, layers, max_positions=max_positions).save_pretrained(out)
    tok.save_pretrained(out)
    return out
