"""Independent references for the tests: counts computed here with plain Python (csv, json,
gzip) from the shared data files exactly as they are published, never through prefkit, so a
test comparing prefkit's output with them fails when a reader or a stage miscounts."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from functools import cache

from tests.conftest import DATA

LLMFAO = DATA / "llmfao" / "llmfao.csv"
HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"


@dataclass(frozen=True)
class LLMFAOCounts:
    rows: int  # battles (one CSV row each)
    ties: int  # winner == "tie"
    models: int  # distinct names in `left` and `right`
    workers: int  # distinct `worker` ids (the annotators)


@cache
def llmfao_counts() -> LLMFAOCounts:
    with LLMFAO.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return LLMFAOCounts(
        rows=len(rows),
        ties=sum(r["winner"] == "tie" for r in rows),
        models=len({r["left"] for r in rows} | {r["right"] for r in rows}),
        workers=len({r["worker"] for r in rows}),
    )


@dataclass(frozen=True)
class HHCounts:
    rows: int  # transcript pairs (one JSON object a line)
    empty_response: int  # pairs whose last assistant turn is blank on either side


@cache
def hh_harmless_counts() -> HHCounts:
    rows = empty = 0
    with gzip.open(HH_HARMLESS, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            rows += 1
            last = [rec[k].rsplit("\n\nAssistant:", 1)[1] for k in ("chosen", "rejected")]
            empty += any(not t.strip() for t in last)
    return HHCounts(rows=rows, empty_response=empty)


PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"
FINEGRAINED_DEV = (
    DATA / "finegrained_rlhf_qa_feedback" / "tasks" / "qa_feedback" / "data" / "dev_feedback.json"
)


@cache
def json_records(path: str) -> int:
    """Records in a JSON file whose top level is a list (PandaLM, FineGrainedRLHF, LLMBar)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list), path
    return len(data)


def pandalm_items() -> int:
    """Pairs in the PandaLM human test set (each judged by three annotators)."""
    return json_records(str(PANDALM))


def finegrained_questions() -> int:
    """Questions in FineGrainedRLHF qa-feedback dev (four predictions each)."""
    return json_records(str(FINEGRAINED_DEV))
