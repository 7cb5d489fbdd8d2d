"""Every reader on small fixtures written from the formats' documented schemas."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.io.base import ReadOptions
from prefkit.io.detect import read
from prefkit.schema import Kind, prompt_id, validate
from tests.io._util import cli, inspect_json, write_jsonl
from tests.raw import finegrained_questions, llmfao_counts

U = "user"
A = "assistant"


def _one(tmp_path: Path, rows: list[object], name: str = "in.jsonl") -> tuple[str, list[dict]]:  # type: ignore[type-arg]
    res = read(write_jsonl(tmp_path / name, rows))
    assert not res.rejects, [r.message() for r in res.rejects]
    validate(res.table)
    return res.reader, res.table.to_pylist()


def test_trl_standard_explicit(tmp_path: Path) -> None:
    reader, rows = _one(
        tmp_path, [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}]
    )
    assert reader == "trl"
    r = rows[0]
    assert r["prompt"] == [{"role": U, "content": "The sky is"}]
    assert r["response_a"] == [{"role": A, "content": " blue."}]
    assert r["response_b"] == [{"role": A, "content": " green."}]
    assert r["outcome"] == "a"
    assert r["prompt_id"] == prompt_id([{"role": U, "content": "The sky is"}])


def test_trl_standard_implicit(tmp_path: Path) -> None:
    _, rows = _one(tmp_path, [{"chosen": "The sky is blue.", "rejected": "The sky is green."}])
    assert rows[0]["prompt"] == [{"role": U, "content": "The sky is "}]
    assert rows[0]["response_a"][0]["content"] == "blue."
    assert rows[0]["response_b"][0]["content"] == "green."


def test_trl_conversational_explicit_and_implicit(tmp_path: Path) -> None:
    p = [{"role": U, "content": "What color is the sky?"}]
    c = [{"role": A, "content": "It is blue."}]
    r = [{"role": A, "content": "It is green."}]
    _, rows = _one(tmp_path, [{"prompt": p, "chosen": c, "rejected": r}])
    assert rows[0]["prompt"] == p and rows[0]["response_a"] == c and rows[0]["response_b"] == r
    multi = [{"role": "system", "content": "Be brief."}, *p, {"role": A, "content": "Blue."}]
    multi += [{"role": U, "content": "Sure?"}]
    _, rows = _one(tmp_path, [{"chosen": multi + c, "rejected": multi + r}], "imp.jsonl")
    assert rows[0]["prompt"] == multi
    assert rows[0]["response_a"] == c and rows[0]["response_b"] == r


def test_trl_unpaired_kto(tmp_path: Path) -> None:
    reader, rows = _one(
        tmp_path,
        [
            {"prompt": "The sky is", "completion": " blue.", "label": True},
            {"prompt": "The sky is", "completion": " green.", "label": False},
        ],
    )
    assert reader == "trl-unpaired"
    assert [r["label"] for r in rows] == [True, False]
    assert rows[1]["response"] == [{"role": A, "content": " green."}]


def test_trl_stepwise(tmp_path: Path) -> None:
    reader, rows = _one(
        tmp_path,
        [
            {
                "prompt": "Which number is larger, 9.8 or 9.11?",
                "completions": ["The fractional part of 9.8 is 0.8.", "So 9.11 is larger."],
                "labels": [True, False],
            }
        ],
    )
    assert reader == "trl-stepwise"
    assert [r["label"] for r in rows] == [True, False]
    assert rows[1]["meta"] and dict(rows[1]["meta"])["step"] == "1"
    assert dict(rows[1]["meta"])["previous_steps"] == "The fractional part of 9.8 is 0.8."


def test_hh_multi_turn_divergence(tmp_path: Path) -> None:
    base = "\n\nHuman: Hi\n\nAssistant: Hello, how can I help?\n\nHuman: Tell me a joke"
    reader, rows = _one(
        tmp_path,
        [{"chosen": base + "\n\nAssistant: Why did ...", "rejected": base + "\n\nAssistant: No."}],
    )
    assert reader == "hh-rlhf"
    assert [m["role"] for m in rows[0]["prompt"]] == [U, A, U]
    assert rows[0]["prompt"][2]["content"] == "Tell me a joke"
    assert rows[0]["response_b"] == [{"role": A, "content": "No."}]


def test_arena_battles(tmp_path: Path) -> None:
    conv = [{"role": U, "content": "hi"}]
    reader, rows = _one(
        tmp_path,
        [
            {"model_a": "gpt-4", "model_b": "vicuna", "winner": "model_a", "judge": "u1"},
            {"model_a": "gpt-4", "model_b": "vicuna", "winner": "model_b", "judge": "u2"},
            {"model_a": "gpt-4", "model_b": "vicuna", "winner": "tie", "judge": "u3"},
            {
                "model_a": "gpt-4",
                "model_b": "vicuna",
                "winner": "tie (bothbad)",
                "judge": "u4",
                "conversation_a": conv + [{"role": A, "content": "Hello!"}],
                "conversation_b": conv + [{"role": A, "content": "Hey."}],
            },
        ],
    )
    assert reader == "arena"
    assert [r["outcome"] for r in rows] == ["a", "b", "tie", "both_bad"]
    assert [r["annotator"] for r in rows] == ["u1", "u2", "u3", "u4"]
    assert rows[0]["response_a"] is None
    assert rows[3]["prompt"] == conv and rows[3]["response_b"] == [{"role": A, "content": "Hey."}]


def test_ultrafeedback_ratings_per_aspect(tmp_path: Path) -> None:
    rec = {
        "source": "evol_instruct",
        "instruction": "Name a prime.",
        "models": ["m1", "m2"],
        "completions": [
            {
                "model": "m1",
                "response": "7",
                "annotations": {
                    "helpfulness": {"Rating": "5", "Rationale": "correct"},
                    "honesty": {"Rating": "N/A", "Rationale": "n/a"},
                    "truthfulness": {"Type": ["0"], "Rating": "4", "Rationale": "ok"},
                },
                "overall_score": 8.5,
                "critique": "good",
            },
            {"model": "m2", "response": "9", "annotations": {}, "overall_score": 2},
        ],
    }
    reader, rows = _one(tmp_path, [rec])
    assert reader == "ultrafeedback"
    got = [(r["model"], r["aspect"], r["score"], r["scale_max"]) for r in rows]
    assert got == [
        ("m1", "helpfulness", 5.0, 5.0),
        ("m1", "truthfulness", 4.0, 5.0),
        ("m1", None, 8.5, 10.0),
        ("m2", None, 2.0, 10.0),
    ]
    assert rows[0]["rationale"] == "correct"


def test_helpsteer2_ratings(tmp_path: Path) -> None:
    rec = {"prompt": "c#", "response": "C# is ...", "helpfulness": 3, "correctness": 4}
    rec |= {"coherence": 4, "complexity": 2, "verbosity": 1}
    reader, rows = _one(tmp_path, [rec])
    assert reader == "helpsteer2"
    assert {r["aspect"]: r["score"] for r in rows} == {
        "helpfulness": 3.0,
        "correctness": 4.0,
        "coherence": 4.0,
        "complexity": 2.0,
        "verbosity": 1.0,
    }


def test_helpsteer3_and_2_preferences(tmp_path: Path) -> None:
    ctx = [{"role": U, "content": "Write a haiku"}]
    rows3 = [
        {
            "domain": "general",
            "language": "english",
            "context": ctx,
            "response1": "r1",
            "response2": "r2",
            "overall_preference": p,
            "individual_preference": [
                {"score": p, "reasoning": "because", "feedback1": "", "feedback2": ""}
            ],
        }
        for p in (-3, 0, 2)
    ]
    reader, rows = _one(tmp_path, rows3)
    assert reader == "helpsteer-preference"
    # strength is directional (1 = strongly prefers a), whatever the outcome
    assert [(r["outcome"], r["strength"]) for r in rows] == [("a", 1.0), ("tie", 0.5), ("b", 1 / 6)]
    assert rows[0]["prompt"] == ctx and rows[0]["rationale"] == "because"
    rec2 = {
        "split": "train",
        "prompt": "q",
        "response_1": "x",
        "response_2": "y",
        "preference_strength": 1,
        "preference_statement": "@Response 2 is better",
    }
    _, rows = _one(tmp_path, [rec2], "hs2.jsonl")
    assert rows[0]["outcome"] == "b"


def test_shp(tmp_path: Path) -> None:
    rec = {
        "post_id": "p1",
        "domain": "askculinary_train",
        "upvote_ratio": 0.9,
        "history": "How long to boil an egg?",
        "c_root_id_A": "a1",
        "c_root_id_B": "b1",
        "created_at_utc_A": 1,
        "created_at_utc_B": 2,
        "score_A": 10,
        "score_B": 3,
        "human_ref_A": "7 minutes",
        "human_ref_B": "an hour",
        "labels": 1,
        "seconds_difference": 1.0,
        "score_ratio": 3.3,
    }
    reader, rows = _one(tmp_path, [rec, {**rec, "labels": 0, "c_root_id_A": "a2"}])
    assert reader == "shp"
    assert [r["outcome"] for r in rows] == ["a", "b"]
    assert dict(rows[0]["meta"])["score_A"] == "10"


def test_openai_preference(tmp_path: Path) -> None:
    rec = {
        "input": {"messages": [{"role": U, "content": "Hi"}], "tools": []},
        "preferred_output": [{"role": A, "content": "Hello!"}],
        "non_preferred_output": [{"role": A, "content": "Go away."}],
    }
    reader, rows = _one(tmp_path, [rec])
    assert reader == "openai"
    assert rows[0]["prompt"] == [{"role": U, "content": "Hi"}]
    assert rows[0]["response_b"] == [{"role": A, "content": "Go away."}]


def test_generic_csv_with_map_and_value_map(tmp_path: Path) -> None:
    src = tmp_path / "mine.csv"
    src.write_text(
        "question,ans1,ans2,winner,rater\nq1,x,y,L,r1\nq2,x,y,R,r2\nq3,x,y,=,r1\n",
        encoding="utf-8",
    )
    opts = ReadOptions(
        mapping={
            "question": "prompt",
            "ans1": "response_a",
            "ans2": "response_b",
            "winner": "outcome",
            "rater": "annotator",
        },
        value_maps={"outcome": {"L": "a", "R": "b", "=": "tie"}},
    )
    res = read(src, None, opts)
    assert res.reader == "generic"
    assert res.table.column("outcome").to_pylist() == ["a", "b", "tie"]
    assert res.table.column("annotator").to_pylist() == ["r1", "r2", "r1"]
    s = inspect_json(
        src,
        "--map",
        "question=prompt",
        "--map",
        "ans1=response_a",
        "--map",
        "ans2=response_b",
        "--map",
        "winner=outcome",
        "--value-map",
        "outcome:L=a",
        "--value-map",
        "outcome:R=b",
        "--value-map",
        "outcome:==tie",
    )
    assert s["outcomes"] == {"a": 1, "b": 1, "tie": 1, "both_bad": 0}


def test_generic_parquet_ratings(tmp_path: Path) -> None:
    src = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"q": ["a", "b"], "answer": ["x", "y"], "stars": [4, 2]}), src)
    res = read(
        src, "generic", ReadOptions(mapping={"q": "prompt", "answer": "response", "stars": "score"})
    )
    assert res.kind is Kind.RATINGS
    assert res.table.column("score").to_pylist() == [4.0, 2.0]


def test_hf_save_to_disk_folder_of_a_vendor_format(tmp_path: Path) -> None:
    from datasets import Dataset

    ds = Dataset.from_list(
        [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}] * 3
    )
    ds.save_to_disk(str(tmp_path / "ds"))
    res = read(tmp_path / "ds")
    assert res.reader == "trl"
    assert res.table.num_rows == 3


def test_list_formats() -> None:
    res = cli("convert", "--list-formats")
    assert res.exit_code == 0
    for name in (
        "hh-rlhf",
        "pandalm",
        "llmfao",
        "arena",
        "llmbar",
        "finegrained-rlhf",
        "icai",
        "trl",
        "trl-unpaired",
        "trl-stepwise",
        "ultrafeedback",
        "helpsteer2",
        "shp",
        "openai",
        "generic",
        "canonical",
    ):
        assert f"  {name} " in res.stdout
    assert res.stdout.index("hh-rlhf") < res.stdout.index("  trl ")
    lines = res.stdout.splitlines()
    writers = next(i for i, x in enumerate(lines) if x.startswith("writers"))
    assert lines[writers - 1].split()[0] == "generic"  # generic is tried last


def test_convert_trl_refuses_ties(tmp_path: Path) -> None:
    from tests.conftest import DATA

    res = cli("convert", DATA / "llmfao/llmfao.csv", tmp_path / "x.jsonl", "--to", "trl")
    assert res.exit_code == 1
    ties = llmfao_counts().ties  # plain csv over the published file
    assert "prefkit pairs" in str(res.exception) and f"{ties} tie" in str(res.exception)
    assert not (tmp_path / "x.jsonl").exists()


def test_convert_reports_reader_and_second_table(tmp_path: Path) -> None:
    from tests.conftest import DATA

    src = DATA / "finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json"
    res = cli("convert", src, tmp_path / "fg.parquet")
    assert res.exit_code == 0, res.output
    assert "finegrained-rlhf" in res.output
    from prefkit.io.canonical import load

    n = finegrained_questions()  # plain json over the published file
    assert load(tmp_path / "fg.parquet").num_rows == n
    assert load(tmp_path / "fg.critiques.parquet").num_rows == n


def test_vendor_parquet_is_autodetected(tmp_path: Path) -> None:
    src = tmp_path / "prefs.parquet"
    rows = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(50)]
    pq.write_table(pa.Table.from_pylist(rows), src, row_group_size=10)
    res = read(src)
    assert res.reader == "trl" and "TRL preference" in res.why
    assert res.table.num_rows == 50


def test_openai_chat_feedback(tmp_path: Path) -> None:
    conv = [{"role": "system", "content": "Be kind"}, {"role": U, "content": "Hi"}]
    res = read(
        write_jsonl(
            tmp_path / "chat.jsonl",
            [
                {"messages": [*conv, {"role": A, "content": "Hello!"}], "thumbs_up": True},
                {"messages": [*conv, {"role": A, "content": "Go."}], "thumbs_up": False},
                {"messages": conv, "thumbs_up": True},
            ],
        )
    )
    assert res.reader == "openai-chat"
    assert res.table.column("label").to_pylist() == [True, False]
    assert res.table.column("prompt").to_pylist()[0] == conv
    assert [(r.line, r.field) for r in res.rejects] == [(3, "messages")]
    rated = read(
        write_jsonl(
            tmp_path / "rated.jsonl",
            [{"messages": [*conv, {"role": A, "content": "Hello!"}], "rating": 4}],
        )
    )
    assert rated.kind.value == "ratings" and rated.table.column("score").to_pylist() == [4.0]


def test_generic_chosen_rejected_map_implies_outcome_a(tmp_path: Path) -> None:
    src = tmp_path / "pairs.csv"
    src.write_text("question,good,bad\nq1,yes,no\n", encoding="utf-8")
    opts = ReadOptions(mapping={"question": "prompt", "good": "chosen", "bad": "rejected"})
    res = read(src, None, opts)
    row = res.table.to_pylist()[0]
    assert row["outcome"] == "a"
    assert row["response_a"] == [{"role": A, "content": "yes"}]
    assert row["response_b"] == [{"role": A, "content": "no"}]
