"""Model battles without text: LLMFAO (`left`/`right`/`winner`, worker ids) and Chatbot Arena
(`model_a`/`model_b`/`winner` incl. `tie (bothbad)`; conversations kept when present)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from prefkit.io.base import ReadOptions, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    messages,
    meta_of,
    need,
    need_str,
    opt_str,
    outcome_from,
    shared_prefix,
)
from prefkit.io.readers._fast import BattlePlan
from prefkit.io.readers._records import type_name
from prefkit.schema import Kind

LLMFAO = {"left": "a", "right": "b", "tie": "tie"}
ARENA = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "both_bad",
    "both_bad": "both_bad",
}


class LLMFAOReader(RecordReader):
    name = "llmfao"
    description = "LLMFAO crowd battles: left/right model names, winner left/right/tie, worker"
    example = (
        "id,prompt,model_x,model_y,worker,winner,left,right\n0,8,97,98,58,tie,GPT 4,Weaver 12k"
    )

    keys = frozenset({"left", "right", "winner"})
    why = "left/right/winner columns (LLMFAO battles)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        left, right = need_str(rec, "left", False), need_str(rec, "right", False)
        outcome = outcome_from(rec.get("winner"), "winner", LLMFAO, ctx)
        pid = opt_str(rec, "prompt")
        worker = opt_str(rec, "worker")
        row: dict[str, Any] = {
            "model_a": left,
            "model_b": right,
            "outcome": outcome,
            "shown_first": "a",
            "annotator": worker,
            "meta": {
                **meta_of(rec, ("left", "right", "winner", "worker")),
                "pair_id": str(rec.get("id")),
            },
        }
        if pid is not None:
            row["prompt_id"] = f"llmfao:{pid}"
        yield Kind.COMPARISONS, row

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> BattlePlan | None:
        return BattlePlan(
            "left",
            "right",
            "winner",
            vocab=with_canonical(LLMFAO),
            texts={"annotator": ("worker",)},
            prompt_id_from=("llmfao:", "prompt"),
            shown_first="a",
            used=frozenset({"left", "right", "winner", "worker"}),
            extra_meta=(("pair_id", "id"),),
            value_maps=_outcome_map(options, "winner"),
        )


class ArenaReader(RecordReader):
    name = "arena"
    description = "Chatbot Arena battles: model_a/model_b/winner (tie (bothbad) -> both_bad)"
    example = (
        '{"question_id": "q1", "model_a": "gpt-4", "model_b": "vicuna-13b",'
        ' "winner": "tie (bothbad)", "judge": "arena_user_1", "conversation_a": [...]}'
    )

    keys = frozenset({"model_a", "model_b", "winner"})
    why = "model_a/model_b/winner columns (Chatbot Arena battles)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        ma, mb = need_str(rec, "model_a", False), need_str(rec, "model_b", False)
        outcome = outcome_from(rec.get("winner"), "winner", ARENA, ctx)
        row: dict[str, Any] = {
            "model_a": ma,
            "model_b": mb,
            "outcome": outcome,
            "annotator": opt_str(rec, "judge") or opt_str(rec, "annotator"),
        }
        used = ["model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b"]
        ca, cb = rec.get("conversation_a"), rec.get("conversation_b")
        if ca is not None and cb is not None:
            a = messages(ca, "conversation_a", "user")
            b = messages(cb, "conversation_b", "user")
            n = shared_prefix(a, b)
            row["prompt"], row["response_a"], row["response_b"] = a[:n], a[n:], b[n:]
        elif isinstance(rec.get("prompt"), str):
            row["prompt"] = rec["prompt"]
            used.append("prompt")
        if row.get("prompt") is None and rec.get("question_id") is not None:
            row["prompt_id"] = f"arena:{rec['question_id']}"
        row["meta"] = meta_of(rec, used)
        yield Kind.COMPARISONS, row

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> BattlePlan | None:
        if {"conversation_a", "conversation_b"} <= set(schema.names):
            return None  # battles with text: per row
        used = {"model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b"}
        return BattlePlan(
            "model_a",
            "model_b",
            "winner",
            vocab=with_canonical(ARENA),
            texts={"annotator": ("judge", "annotator")},
            prompt="prompt",
            prompt_id_from=("arena:", "question_id"),
            used=frozenset(used | {"prompt"}),
            value_maps=_outcome_map(options, "winner"),
        )


def with_canonical(vocab: Mapping[str, str]) -> dict[str, str]:
    """An outcome vocabulary plus the canonical values, as `outcome_from` accepts them."""
    return {**{o: o for o in ("a", "b", "tie", "both_bad")}, **vocab}


def _outcome_map(options: ReadOptions, column: str) -> dict[str, Mapping[str, str]]:
    vm = options.value_maps.get("outcome")
    return {column: vm} if vm else {}


WINNER_COLUMNS = {"winner_model_a": "a", "winner_model_b": "b", "winner_tie": "tie"}


def turns(value: Any, field: str) -> list[str]:
    """A column documented to hold a JSON-encoded list of turns (strings; null = empty turn).
    Decoded only when it is one: any other text is one turn, verbatim."""
    if isinstance(value, list):
        got: Any = value
    elif isinstance(value, str):
        try:
            got = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    else:
        raise RowError(field, f"expected a JSON list of turns, got {type_name(value)}")
    if isinstance(got, list) and all(isinstance(t, str) or t is None for t in got):
        return [t or "" for t in got]
    return [value if isinstance(value, str) else json.dumps(value)]


class ArenaPreferenceReader(RecordReader):
    """LMSYS arena-human-preference-55k (the Kaggle competition files)."""

    name = "arena-55k"
    description = (
        "LMSYS arena-human-preference-55k: prompt/response_a/response_b (JSON lists of turns)"
        " + winner_model_a/winner_model_b/winner_tie"
    )
    example = (
        "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,"
        'winner_tie\n30192,gpt-4,gpt-4-0613,"[""Is it morally right...""]","[""The question..""]",'
        '"[""As an AI...""]",1,0,0'
    )

    keys = frozenset({*WINNER_COLUMNS, "response_a", "response_b"})
    why = "prompt/response_a/response_b + winner_model_a/_b/_tie (arena-human-preference-55k)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        won = []
        for col, outcome in WINNER_COLUMNS.items():
            v = need(rec, col)
            try:
                flag = float(v)
            except (TypeError, ValueError):
                raise RowError(col, f"expected 0 or 1, got {type_name(v)} {v!r}") from None
            if flag not in (0.0, 1.0) or isinstance(v, bool):
                raise RowError(col, f"expected 0 or 1, got {v!r}")
            if flag == 1.0:
                won.append(outcome)
        if len(won) != 1:
            raise RowError(
                "winner_model_a", f"exactly one of winner_model_a/_b/_tie must be 1, got {len(won)}"
            )
        p = turns(need(rec, "prompt"), "prompt")
        ra = turns(need(rec, "response_a"), "response_a")
        rb = turns(need(rec, "response_b"), "response_b")
        if not (len(p) == len(ra) == len(rb)):
            raise RowError(
                "response_a",
                f"{len(p)} prompt turns, {len(ra)} and {len(rb)} response turns",
            )

        def conversation(answers: list[str]) -> list[dict[str, str]]:
            out = []
            for q, a in zip(p, answers, strict=True):
                out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            return out

        a, b = conversation(ra), conversation(rb)
        n = shared_prefix(a, b)
        ids = {} if rec.get("id") is None else {"id": f"{ctx.source}:{rec['id']}"}
        yield (
            Kind.COMPARISONS,
            {
                **ids,
                "prompt": a[:n],
                "response_a": a[n:],
                "response_b": b[n:],
                "model_a": opt_str(rec, "model_a"),
                "model_b": opt_str(rec, "model_b"),
                "outcome": won[0],
                "meta": meta_of(
                    rec,
                    ("prompt", "response_a", "response_b", "model_a", "model_b", *WINNER_COLUMNS),
                ),
            },
        )


register_reader(LLMFAOReader())
register_reader(ArenaReader())
register_reader(ArenaPreferenceReader())
