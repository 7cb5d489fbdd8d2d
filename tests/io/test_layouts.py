"""Files laid out the way public preference datasets publish them (tests/data/layouts) are
recognised without `--from` and read into the rows the table in its README states; their
TRL export has prompts without the response turn and responses that start with the
assistant, and a real `DPOTrainer` step accepts it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io.detect import read
from tests.conftest import REPO

LAYOUTS = REPO / "tests" / "data" / "layouts"


def _table() -> list[dict[str, str]]:
    lines = (LAYOUTS / "README.md").read_text(encoding="utf-8").splitlines()
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| file")]
    keys = ["file", "layout", "reader", "kind", "rows", "a", "b", "tie", "both_bad"]
    return [
        dict(zip(keys, (c.strip() for c in r.strip("|").split("|")), strict=True)) for r in rows
    ]


TABLE = _table()


def test_the_table_lists_every_file_and_at_least_twenty() -> None:
    listed = {r["file"] for r in TABLE}
    on_disk = {p.name for p in LAYOUTS.iterdir() if p.name != "README.md"}
    assert listed == on_disk
    assert len(listed) >= 20


@pytest.mark.parametrize("entry", TABLE, ids=[r["file"] for r in TABLE])
def test_layout_reads_as_stated(entry: dict[str, str]) -> None:
    res = read(LAYOUTS / entry["file"])
    assert res.reader == entry["reader"], res.why
    assert res.kind.value == entry["kind"]
    assert res.table.num_rows == int(entry["rows"])
    assert res.rejects == []
    if entry["a"] != "-":
        got = {o: 0 for o in ("a", "b", "tie", "both_bad")}
        for o in res.table.column("outcome").to_pylist():
            got[o] += 1
        assert got == {o: int(entry[o]) for o in got}


def _rows(name: str) -> list[dict[str, Any]]:
    return list(read(LAYOUTS / name).table.to_pylist())


def U(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def A(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_h4_binarized_moves_the_user_turn_to_the_prompt_and_keeps_scores() -> None:
    rows = _rows("ultrafeedback_binarized.parquet")
    assert rows[0]["prompt"] == [U("Name three primary colors.")]
    assert rows[0]["response_a"] == [A("Red, yellow and blue.")]
    assert rows[0]["response_b"] == [A("Red, green and orange.")]
    meta = dict(rows[0]["meta"])
    assert (meta["score_a"], meta["score_b"]) == ("9.0", "4.0")
    assert "score_chosen" not in meta and "prompt_id" in meta  # the source's id is kept
    # a response whose text is JSON stays that text
    assert rows[1]["response_a"] == [A('{"products": ["milk", "eggs"]}')]
    assert rows[1]["response_b"] == [A('["milk"]')]
    assert rows[2]["response_a"] == [A("42")]


def test_tulu_and_skywork_prompts() -> None:
    tulu = _rows("tulu3_preference_mixture.parquet")
    assert tulu[0]["prompt"] == [U("Give me a synonym for happy.")]
    assert tulu[0]["response_a"] == [A("Joyful.")] and tulu[2]["response_a"] == [A("true")]
    assert tulu[0]["id"] == "allenai/tulu-3-sft-reused-off-policy_1"
    sky = _rows("skywork_preference.parquet")
    assert sky[2]["prompt"] == [U("Hi"), A("Hello!"), U("Count to 3.")]
    assert sky[2]["response_a"] == [A("1, 2, 3.")]


def test_arena_55k_keeps_every_turn() -> None:
    rows = _rows("arena_human_preference_55k.csv")
    two = rows[1]
    assert two["prompt"] == [
        U("What is the difference between marriage license and marriage certificate?")
    ]
    assert two["response_a"] == [
        A("A marriage license is..."),
        U("Which one should be done first?"),
        A("The license comes first."),
    ]
    assert two["response_b"][-1] == A("")  # a null turn is an empty answer
    assert (two["model_a"], two["model_b"], two["outcome"]) == ("koala-13b", "gpt-4-0613", "b")
    assert rows[3]["response_b"] == [A('["Use stratified sampling"]')]  # text, not a list
    assert rows[0]["id"].endswith(":30192")


def test_arena_conversations_multi_turn_and_meta() -> None:
    rows = _rows("chatbot_arena_conversations.parquet")
    assert rows[2]["prompt"] == [U("2+2?")]
    assert rows[2]["response_a"] == [A("4"), U("And 3+3?"), A("6")]
    meta = dict(rows[0]["meta"])
    assert json.loads(meta["openai_moderation"])["flagged"] is False
    assert rows[0]["annotator"] == "arena_user_100"


def test_rankings_nectar_and_oasst() -> None:
    nectar = _rows("nectar.parquet")
    assert nectar[1]["prompt"] == [U("Hi"), A("Hello! How can I help?"), U("Recommend a book.")]
    assert nectar[0]["ranks"] == [1, 2, 3, 4, 5, 6, 7] and len(nectar[0]["responses"]) == 7
    res = read(LAYOUTS / "oasst1.jsonl")
    rows = res.table.to_pylist()
    first, second = rows
    assert first["prompt"] == [U("Can you explain what a monad is?")]
    assert [r[0]["content"][:8] for r in first["responses"]] == ["A monad ", "It's a b", "A monoid"]
    assert first["ranks"] == [1, 3, 2]
    assert second["prompt"] == [
        U("Can you explain what a monad is?"),
        A("A monad is a design pattern for chaining computations."),
        U("Can you give an example?"),
    ]
    assert second["ranks"] == [1, 2]
    # every message is accounted for: 5 in rankings, 4 context/unranked (m1, m5, p1, a1)
    assert res.rows_in == 9
    assert res.notes["messages in a ranking"] == 5
    assert res.notes["messages only as context or not ranked"] == 4


def test_oasst_repeated_message_ids_are_rejected_not_lost(tmp_path: Path) -> None:
    lines = (LAYOUTS / "oasst1.jsonl").read_text("utf-8").splitlines(keepends=True)
    twice = tmp_path / "twice.jsonl"
    twice.write_text("".join(lines * 2), "utf-8")
    once = read(LAYOUTS / "oasst1.jsonl")
    res = read(twice)

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("id", "source")} for r in rows]

    assert strip(res.table.to_pylist()) == strip(once.table.to_pylist())
    # every copy is a reject naming the line it repeats; every record is accounted for
    assert [(r.line, r.field) for r in res.rejects] == [
        (len(lines) + i + 1, "message_id") for i in range(len(lines))
    ]
    assert all(f"line {i + 1} " in r.reason for i, r in enumerate(res.rejects))
    assert res.rows_in == 2 * len(lines) == len(res.rejects) + sum(res.notes.values())


def test_pku_two_aspects() -> None:
    rows = _rows("pku_saferlhf.jsonl")
    assert [(r["aspect"], r["outcome"]) for r in rows[:2]] == [
        ("helpfulness", "b"),
        ("harmlessness", "a"),
    ]
    assert (rows[0]["model_a"], rows[0]["model_b"]) == ("Alpaca-7B", "Alpaca2-7B")
    assert dict(rows[0]["meta"])["is_response_1_safe"] == "false"


def test_hub_folder_and_glob_keep_the_split() -> None:
    res = read(LAYOUTS / "hub_trl")
    splits = [dict(m)["split"] for m in res.table.column("meta").to_pylist()]
    assert splits.count("train") == 7 and splits.count("test") == 2
    assert set(res.table.column("source").to_pylist()) == {"trl:hub_trl"}
    ids = res.table.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    glob = read(str(LAYOUTS / "hub_trl" / "data" / "train-*.parquet"))
    assert glob.table.num_rows == 7
    assert [r["prompt"] for r in glob.table.to_pylist()] == [
        r["prompt"] for r in res.table.to_pylist() if dict(r["meta"])["split"] == "train"
    ]
    hs3 = read(LAYOUTS / "hub_helpsteer3")
    assert [dict(m)["split"] for m in hs3.table.column("meta").to_pylist()] == [
        "train",
        "train",
        "validation",
    ]


PAIR_LAYOUTS = [
    r["file"]
    for r in TABLE
    if r["kind"] in ("comparisons", "ratings", "rankings")
    # no text to pair (model battles), one response per prompt (HelpSteer2 ratings)
    and r["file"] not in ("arena_clean_battles.json", "canonical_battles.csv", "helpsteer2.jsonl")
] + ["trl_unpaired_standard.jsonl"]


def _export(name: str, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / (name.split(".")[0] + ".trl.jsonl")
    res = CliRunner().invoke(
        app, ["pairs", str(LAYOUTS / name), str(out), "--to", "trl", "--conversational"]
    )
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", PAIR_LAYOUTS)
def test_trl_export_prompt_has_no_response_turn(name: str, tmp_path: Path) -> None:
    rows = _export(name, tmp_path)
    assert rows, name
    for r in rows:
        assert r["prompt"] and r["prompt"][-1]["role"] != "assistant", r
        assert r["chosen"][0]["role"] == "assistant" and r["rejected"][0]["role"] == "assistant"
        assert r["chosen"] != r["rejected"]
        # the prompt's turns are not repeated at the start of the responses
        assert r["chosen"][: len(r["prompt"])] != r["prompt"]


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.mark.slow
def test_every_export_trains_one_dpo_step(tmp_path: Path) -> None:
    import datasets
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from tests.tiny_lm import tokenizer

    rows = []
    for name in PAIR_LAYOUTS:
        rows += [
            {k: r[k] for k in ("prompt", "chosen", "rejected")} for r in _export(name, tmp_path)
        ]
    ds = datasets.Dataset.from_list(rows)
    texts = [m["content"] for r in rows for k in ("prompt", "chosen", "rejected") for m in r[k]]
    tok = tokenizer(texts, vocab=600)
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(
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
    policy = LlamaForCausalLM(cfg)
    trainer = DPOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),
        args=DPOConfig(
            output_dir=str(tmp_path / "dpo"),
            max_steps=1,
            per_device_train_batch_size=len(rows),
            report_to=[],
            max_length=1024,
            save_strategy="no",
            use_cpu=True,
        ),
        train_dataset=ds,
        processing_class=tok,
    )
    out = trainer.train()
    assert trainer.state.global_step == 1 and out.training_loss == out.training_loss
    # every row went through TRL's own preparation: its chat template put the prompt before
    # the answers and each answer starts at the assistant turn
    prepared = trainer.train_dataset
    assert len(prepared) == len(rows)


def test_split_subfolders_and_mixed_formats(tmp_path: Path) -> None:
    import shutil

    from prefkit.io.base import InputError

    src = LAYOUTS / "trl_standard_explicit.jsonl"
    for split in ("train", "test"):
        (tmp_path / "ds" / "default" / split).mkdir(parents=True)
        shutil.copy(src, tmp_path / "ds" / "default" / split / "0000.jsonl")
    res = read(tmp_path / "ds")
    splits = [dict(m)["split"] for m in res.table.column("meta").to_pylist()]
    assert splits == ["test"] * 3 + ["train"] * 3  # files in sorted order
    shutil.copy(LAYOUTS / "shp.jsonl", tmp_path / "ds" / "default" / "train" / "0001.jsonl")
    with pytest.raises(InputError, match="mixed formats"):
        read(tmp_path / "ds")
