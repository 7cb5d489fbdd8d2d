"""`prefkit inspect --json` on the real files in ../shared/data gives the published counts."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from prefkit.io.detect import read
from prefkit.schema import Kind, validate
from tests.conftest import DATA
from tests.io._util import inspect_json
from tests.raw import finegrained_questions, llmfao_counts

KEYS = {"kind", "rows", "outcomes", "prompts", "annotators", "models"}


def test_hh_harmless_test() -> None:
    path = DATA / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        n = sum(1 for line in fh if line.strip())
    s = inspect_json(path)
    assert KEYS <= set(s)
    assert s["reader"] == "hh-rlhf"
    assert s["kind"] == "comparisons"
    assert s["rows"] == n == 2312
    assert s["outcomes"] == {"a": 2312, "b": 0, "tie": 0, "both_bad": 0}
    assert s["rejected"] == 0


def test_hh_prompt_split_keeps_turns() -> None:
    path = DATA / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"
    t = read(path).table
    first = t.slice(0, 1).to_pylist()[0]
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = json.loads(fh.readline())
    # multi-turn prompt kept as messages; the last assistant turn is the response
    assert [m["role"] for m in first["prompt"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert first["prompt"][0]["content"] == "what are some pranks with a pen i can do?"
    assert raw["chosen"].endswith(first["response_a"][0]["content"])
    assert raw["rejected"].endswith(first["response_b"][0]["content"])
    assert first["response_a"][0]["role"] == "assistant"
    # every row: prompt + response reconstruct the chosen transcript's text
    for row in t.slice(0, 200).to_pylist():
        assert row["prompt"][-1]["role"] == "user"
        assert row["response_a"][0]["role"] == "assistant"


def test_pandalm_human_votes() -> None:
    path = DATA / "pandalm_testset/data/testset-v1.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    ties = sum(r[k] == 0 for r in raw for k in ("annotator1", "annotator2", "annotator3"))
    s = inspect_json(path)
    assert s["reader"] == "pandalm"
    assert s["rows"] == 2997 == 3 * len(raw)
    assert s["outcomes"]["tie"] == 326 == ties
    assert s["annotators"] == 3
    assert s["rejected"] == 0


def test_pandalm_judges_keep_reasons_and_reject_garbage() -> None:
    path = DATA / "pandalm_testset/data/gpt-3.5-turbo-testset-v1.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    garbage = sum(str(r["gpt_result"]).lower() not in ("0", "1", "2", "tie") for r in raw)
    res = read(path)
    assert res.reader == "pandalm-judge"
    assert res.table.num_rows == len(raw) - garbage
    assert len(res.rejects) == garbage > 0
    assert all(r.field == "gpt_result" and r.line for r in res.rejects)
    rows = res.table.slice(0, 1).to_pylist()[0]
    assert rows["annotator"] == "gpt-3.5-turbo"
    assert rows["rationale"] == raw[0]["gpt_reason"]
    assert rows["response_a"] is not None  # texts joined from testset-v1.json by idx


def test_llmfao() -> None:
    path = DATA / "llmfao/llmfao.csv"
    s = inspect_json(path)
    assert s["reader"] == "llmfao"
    raw = llmfao_counts()  # plain csv over the published file
    assert s["rows"] == raw.rows
    assert s["outcomes"]["tie"] == raw.ties
    assert s["models"] == raw.models
    assert s["annotators"] == raw.workers
    t = read(path).table
    assert t.column("response_a").null_count == t.num_rows  # identity-only data


def test_llmbar_natural_and_all_files() -> None:
    s = inspect_json(DATA / "llmbar/Dataset/LLMBar/Natural/dataset.json")
    assert s["reader"] == "llmbar"
    assert s["rows"] == 100
    total = 0
    for f in sorted((DATA / "llmbar/Dataset").rglob("dataset.json")):
        res = read(f)
        assert not res.rejects, f
        assert res.table.num_rows == len(json.loads(f.read_text(encoding="utf-8")))
        total += res.table.num_rows
    assert total == 1200


def test_finegrained_rankings_and_critiques() -> None:
    path = DATA / "finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json"
    s = inspect_json(path)
    assert s["kind"] == "rankings"
    assert s["rows"] == finegrained_questions()  # plain json over the published file
    res = read(path)
    assert list(res.tables) == [Kind.RANKINGS, Kind.CRITIQUES]
    validate(res.tables[Kind.CRITIQUES])
    raw = json.loads(path.read_text(encoding="utf-8"))
    crit = res.tables[Kind.CRITIQUES].slice(0, 1).to_pylist()[0]
    errs = raw[0]["feedback"]["errors"]
    assert [(s["start"], s["end"]) for s in crit["spans"]] == [(e["start"], e["end"]) for e in errs]
    assert crit["correction"] == raw[0]["feedback"]["corrected-prediction"]
    # preference [0, 1, 2, 1, 0, 2]: Copeland scores 1.5, 2, 0, 2.5 -> ranks 3, 2, 4, 1
    assert res.tables[Kind.RANKINGS].column("ranks")[0].as_py() == [3, 2, 4, 1]


ICAI = sorted((DATA / "icai_synthetic/data/processed").rglob("*.csv"))


@pytest.mark.parametrize("path", ICAI, ids=[p.name for p in ICAI])
def test_icai_files(path: Path) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        n = sum(1 for _ in csv.DictReader(fh))
    s = inspect_json(path)
    assert s["reader"] == "icai"
    assert s["rows"] == n
    assert s["rejected"] == 0
