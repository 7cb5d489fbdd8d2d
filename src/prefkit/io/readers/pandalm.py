"""PandaLM: human test set with three annotators per pair, and AI-judge result files.

Human file: `instruction`, `input`, `response1`, `response2`, `annotator1..3` in {0 = tie,
1 = response1, 2 = response2}; one comparison row per annotator vote. Judge files
(`gpt_result`/`pandalm_result` + reason, aligned by `idx`): one row per judgment with the
judge as annotator and its reason as rationale; texts are joined from `testset-v1.json` when it
sits in the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefkit.io.base import ReadOptions, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    meta_of,
    need,
    need_str,
    need_text,
    opt_str,
    outcome_from,
)
from prefkit.schema import Kind

VOTES = {"0": "tie", "1": "a", "2": "b"}
ANNOTATORS = ("annotator1", "annotator2", "annotator3")
JUDGES = {"gpt_result": "gpt-3.5-turbo", "pandalm_result": "pandalm-7b"}


def _prompt(rec: Mapping[str, Any]) -> str:
    instruction = need_str(rec, "instruction")
    inp = opt_str(rec, "input") or ""
    return instruction + ("\n\n" + inp if inp.strip() else "")


def _models(rec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    key = rec.get("cmp_key")
    if isinstance(key, str) and key.count("_") == 1:
        a, b = key.split("_")
        return a, b
    return None, None


class PandaLMReader(RecordReader):
    name = "pandalm"
    description = "PandaLM multi-annotator test set (annotator1..3: 0 tie, 1, 2)"
    example = (
        '{"idx": 0, "cmp_key": "bloom-7b_llama-7b", "instruction": "Rewrite ...", "input": "...",'
        ' "response1": "...", "response2": "...", "annotator1": 2, "annotator2": 2,'
        ' "annotator3": 0}'
    )

    keys = frozenset({"response1", "response2", "annotator1"})
    why = "response1/response2 with annotator1..N votes (PandaLM)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        prompt = _prompt(rec)
        ra, rb = need_text(rec, "response1"), need_text(rec, "response2")
        ma, mb = _models(rec)
        names = [k for k in rec if k.startswith("annotator") and k[9:].isdigit()]
        if not names:
            raise RowError("annotator1", "required field is missing")
        votes = [(n, outcome_from(need(rec, n), n, VOTES, ctx)) for n in names]
        meta = meta_of(rec, ("instruction", "input", "response1", "response2", *names))
        pair = str(rec.get("idx", ""))
        for n, outcome in votes:
            yield (
                Kind.COMPARISONS,
                {
                    "id": f"{ctx.source}:{pair}:{n}",
                    "prompt": prompt,
                    "response_a": ra,
                    "response_b": rb,
                    "model_a": ma,
                    "model_b": mb,
                    "outcome": outcome,
                    "annotator": n,
                    "meta": {**meta, "pair_id": pair},
                },
            )


class PandaLMJudgeReader(RecordReader):
    name = "pandalm-judge"
    description = "PandaLM AI-judge results (gpt_result / pandalm_result + reason, by idx)"
    example = '{"idx": 0, "gpt_result": "1", "gpt_reason": "Response 1 is better because ..."}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        for key in JUDGES:
            if "idx" in rec and key in rec:
                return f"idx + {key} (PandaLM AI judge)"
        return None

    def prepare(self, path: Path, options: ReadOptions) -> Context:
        ctx = super().prepare(path, options)
        pairs: dict[str, Mapping[str, Any]] = {}
        human = path.with_name("testset-v1.json")
        if human.exists() and human != path:
            try:
                for r in json.loads(human.read_text(encoding="utf-8")):
                    pairs[str(r.get("idx"))] = r
            except (json.JSONDecodeError, OSError, AttributeError):
                pairs = {}
        ctx.extra["pairs"] = pairs
        return ctx

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        key = next(k for k in JUDGES if k in rec)
        prefix = key[: -len("_result")]
        judge = JUDGES[key]
        outcome = outcome_from(need(rec, key), key, VOTES, ctx)
        idx = str(need(rec, "idx"))
        pair = ctx.extra["pairs"].get(idx)
        row: dict[str, Any] = {
            "id": f"{ctx.source}:{idx}:{judge}",
            "outcome": outcome,
            "annotator": judge,
            "rationale": opt_str(rec, f"{prefix}_reason"),
            "meta": {**meta_of(rec, (key, f"{prefix}_reason")), "pair_id": idx},
        }
        if pair is not None:
            row["prompt"] = _prompt(pair)
            row["response_a"] = need_text(pair, "response1")
            row["response_b"] = need_text(pair, "response2")
            row["model_a"], row["model_b"] = _models(pair)
        yield Kind.COMPARISONS, row


register_reader(PandaLMReader())
register_reader(PandaLMJudgeReader())
