"""Rated and scored feedback sets: UltraFeedback, HelpSteer2 / HelpSteer2-preference /
HelpSteer3-preference, SHP (Stanford Human Preferences), OpenAI-style chat JSONL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from prefkit.io.base import register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    messages,
    meta_of,
    need,
    need_str,
    need_text,
    opt_str,
)
from prefkit.io.readers._records import type_name
from prefkit.schema import Kind

UF_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")
HS2_ASPECTS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def _number(v: Any, field: str) -> float | None:
    if v is None or (isinstance(v, str) and v.strip().upper() in ("N/A", "NA", "")):
        return None
    if isinstance(v, bool):
        raise RowError(field, f"expected a number, got {type_name(v)}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise RowError(field, f"expected a number, got {type_name(v)} {v!r}") from None


class UltraFeedbackReader(RecordReader):
    name = "ultrafeedback"
    description = "UltraFeedback: instruction + completions rated per aspect (1-5) and overall"
    kinds = (Kind.RATINGS,)
    example = (
        '{"source": "evol_instruct", "instruction": "...", "completions": [{"model": "gpt-4",'
        ' "response": "...", "annotations": {"helpfulness": {"Rating": "4", "Rationale": "..."}},'
        ' "overall_score": 7.5, "critique": "..."}]}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"instruction", "completions"} <= set(rec) and isinstance(rec.get("completions"), list):
            return "instruction + completions with annotations (UltraFeedback)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        prompt = need_str(rec, "instruction")
        comps = need(rec, "completions")
        meta = meta_of(rec, ("instruction", "completions", "source", "models"))
        if isinstance(rec.get("source"), str):
            meta["origin"] = rec["source"]
        out: list[Row] = []
        for i, c in enumerate(comps):
            if not isinstance(c, Mapping):
                raise RowError("completions", f"completion {i} is {type_name(c)}, not an object")
            base = {
                "prompt": prompt,
                "response": need_text(c, "response"),
                "model": opt_str(c, "model"),
                "annotator": "gpt-4",
                "meta": {**meta, "completion": str(i)},
            }
            key = f"{ctx.source}:{ctx.extra.get('n', 0)}:{i}"
            ann = c.get("annotations") or {}
            if isinstance(ann, list):  # some dumps store [{"aspect": ..., ...}]
                ann = {a.get("aspect", str(j)): a for j, a in enumerate(ann) if isinstance(a, dict)}
            if not isinstance(ann, Mapping):
                raise RowError("completions", f"completion {i} annotations are {type_name(ann)}")
            # one row per rated aspect (1-5), then the overall score (1-10, critique)
            scored: list[tuple[str | None, Any, float, Any]] = [
                (
                    str(aspect),
                    a.get("Rating"),
                    5.0,
                    a.get("Rationale For Rating") or a.get("Rationale"),
                )
                for aspect, a in ann.items()
                if isinstance(a, Mapping)
            ]
            scored.append((None, c.get("overall_score"), 10.0, c.get("critique")))
            for aspect, raw, top, rationale in scored:
                where = f"completions[{i}]." + (
                    f"annotations.{aspect}" if aspect else "overall_score"
                )
                score = _number(raw, where)
                if score is None:
                    continue
                row = {
                    **base,
                    "id": f"{key}:{aspect or 'overall'}",
                    "score": score,
                    "scale_min": 1.0,
                    "scale_max": top,
                    "aspect": aspect,
                    "rationale": rationale if isinstance(rationale, str) else None,
                }
                out.append((Kind.RATINGS, row))
        ctx.extra["n"] = ctx.extra.get("n", 0) + 1
        if not out:
            raise RowError("completions", "no completion carries a rating")
        return out


class HelpSteer2Reader(RecordReader):
    name = "helpsteer2"
    description = "HelpSteer2: prompt/response with helpfulness..verbosity ratings (0-4)"
    kinds = (Kind.RATINGS,)
    example = (
        '{"prompt": "c#", "response": "C# is ...", "helpfulness": 3, "correctness": 4,'
        ' "coherence": 4, "complexity": 2, "verbosity": 1}'
    )

    keys = frozenset({"prompt", "response", "helpfulness", "correctness"})
    why = "prompt/response + helpfulness/correctness/... (HelpSteer2 ratings)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        prompt, resp = need_str(rec, "prompt"), need_text(rec, "response")
        meta = meta_of(rec, ("prompt", "response", *HS2_ASPECTS))
        out = []
        for aspect in HS2_ASPECTS:
            if aspect not in rec:
                continue
            score = _number(rec[aspect], aspect)
            if score is None:
                continue
            out.append(
                (
                    Kind.RATINGS,
                    {
                        "prompt": prompt,
                        "response": resp,
                        "score": score,
                        "scale_min": 0.0,
                        "scale_max": 4.0,
                        "aspect": aspect,
                        "meta": meta,
                    },
                )
            )
        if not out:
            raise RowError("helpfulness", "no rating present")
        return out


class HelpSteerPreferenceReader(RecordReader):
    name = "helpsteer-preference"
    description = (
        "HelpSteer3 / HelpSteer2 preference: response1/response2 (or response_1/_2) with a"
        " -3..3 preference (negative = response 1 better)"
    )
    example = (
        '{"domain": "general", "context": [{"role": "user", "content": "..."}],'
        ' "response1": "...", "response2": "...", "overall_preference": -2,'
        ' "individual_preference": [{"score": -2, "reasoning": "..."}]}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"response1", "response2", "overall_preference"} <= set(rec):
            return "context/response1/response2/overall_preference (HelpSteer3 preference)"
        if {"response_1", "response_2", "preference_strength"} <= set(rec):
            return "prompt/response_1/response_2/preference_strength (HelpSteer2 preference)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        if "overall_preference" in rec:
            prompt = messages(need(rec, "context"), "context", "user")
            ra, rb = need_text(rec, "response1"), need_text(rec, "response2")
            key = "overall_preference"
            rationale = None
            ind = rec.get("individual_preference")
            if isinstance(ind, list):
                reasons = [str(x.get("reasoning")) for x in ind if isinstance(x, Mapping)]
                rationale = "\n\n".join(r for r in reasons if r and r != "None") or None
            used = ("context", "response1", "response2", key)
        else:
            prompt = messages(need(rec, "prompt"), "prompt", "user")
            ra, rb = need_text(rec, "response_1"), need_text(rec, "response_2")
            key = "preference_strength"
            rationale = opt_str(rec, "preference_elaboration") or opt_str(
                rec, "preference_statement"
            )
            used = ("prompt", "response_1", "response_2", key)
        p = _number(ctx.value("outcome", need(rec, key)), key)
        if p is None or not -3 <= p <= 3:
            raise RowError(key, f"expected a number in -3..3, got {rec.get(key)!r}")
        outcome = "a" if p < 0 else "b" if p > 0 else "tie"
        yield (
            Kind.COMPARISONS,
            {
                "prompt": prompt,
                "response_a": ra,
                "response_b": rb,
                "outcome": outcome,
                # canonical strength is directional (1 = strongly prefers a): -3 -> 1, 3 -> 0
                "strength": (3.0 - p) / 6.0,
                "rationale": rationale,
                "meta": meta_of(rec, used),
            },
        )


class SHPReader(RecordReader):
    name = "shp"
    description = "Stanford Human Preferences: history/human_ref_A/human_ref_B/labels (1 = A)"
    example = (
        '{"post_id": "x1", "domain": "askculinary_train", "history": "...", "human_ref_A": "...",'
        ' "human_ref_B": "...", "labels": 1, "score_A": 12, "score_B": 3, "score_ratio": 4.0}'
    )

    keys = frozenset({"history", "human_ref_A", "human_ref_B", "labels"})
    why = "history/human_ref_A/human_ref_B/labels (SHP)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        lab = ctx.value("outcome", need(rec, "labels"))
        if str(lab) not in ("0", "1", "a", "b"):
            raise RowError("labels", f"unknown outcome value {lab!r} (expected 1 = A, 0 = B)")
        outcome = "a" if str(lab) in ("1", "a") else "b"
        aspect = None
        dom = rec.get("domain")
        yield (
            Kind.COMPARISONS,
            {
                "id": f"{ctx.source}:{rec.get('post_id')}:{rec.get('c_root_id_A')}:"
                f"{rec.get('c_root_id_B')}",
                "prompt": need_str(rec, "history"),
                "response_a": need_text(rec, "human_ref_A"),
                "response_b": need_text(rec, "human_ref_B"),
                "outcome": outcome,
                "aspect": aspect,
                "annotator": "reddit-votes",
                "meta": {
                    **meta_of(rec, ("history", "human_ref_A", "human_ref_B", "labels")),
                    **({"subreddit": str(dom).split("_")[0]} if dom else {}),
                },
            },
        )


class OpenAIPreferenceReader(RecordReader):
    name = "openai"
    description = (
        "OpenAI preference fine-tuning JSONL: input.messages / preferred_output /"
        " non_preferred_output"
    )
    example = (
        '{"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output":'
        ' [{"role": "assistant", "content": "Hello!"}], "non_preferred_output":'
        ' [{"role": "assistant", "content": "Go away."}]}'
    )

    keys = frozenset({"input", "preferred_output", "non_preferred_output"})
    why = "input.messages/preferred_output/non_preferred_output (OpenAI preference)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        inp = need(rec, "input")
        if not isinstance(inp, Mapping):
            raise RowError("input", f"expected an object with 'messages', got {type_name(inp)}")
        prompt = messages(need(inp, "messages"), "input.messages", "user")
        extra = {k: v for k, v in inp.items() if k != "messages"}
        meta = meta_of(rec, ("input", "preferred_output", "non_preferred_output"))
        if extra:
            meta["input_extra"] = json.dumps(extra, ensure_ascii=False, default=str)
        yield (
            Kind.COMPARISONS,
            {
                "prompt": prompt,
                "response_a": messages(need(rec, "preferred_output"), "preferred_output"),
                "response_b": messages(need(rec, "non_preferred_output"), "non_preferred_output"),
                "outcome": "a",
                "meta": meta,
            },
        )


class SafeRLHFReader(RecordReader):
    """PKU-SafeRLHF: two responses judged twice, for helpfulness (`better_response_id`) and
    for harmlessness (`safer_response_id`), with per-response safety labels."""

    name = "pku-saferlhf"
    description = (
        "PKU-SafeRLHF: prompt/response_0/response_1 + better_response_id (helpfulness) and"
        " safer_response_id (harmlessness) -> two comparisons"
    )
    example = (
        '{"prompt": "How do I ...?", "response_0": "...", "response_1": "...",'
        ' "is_response_0_safe": true, "is_response_1_safe": false, "better_response_id": 1,'
        ' "safer_response_id": 0}'
    )
    ASPECTS = (("better_response_id", "helpfulness"), ("safer_response_id", "harmlessness"))

    keys = frozenset(
        {"prompt", "response_0", "response_1", "better_response_id", "safer_response_id"}
    )
    why = "prompt/response_0/response_1/better_response_id/safer_response_id (PKU-SafeRLHF)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        prompt = need_str(rec, "prompt")
        ra, rb = need_text(rec, "response_0"), need_text(rec, "response_1")
        used = ("prompt", "response_0", "response_1", "response_0_source", "response_1_source")
        meta = meta_of(rec, used + tuple(k for k, _ in self.ASPECTS))
        out = []
        for key, aspect in self.ASPECTS:
            v = ctx.value("outcome", need(rec, key))
            if str(v) not in ("0", "1") or isinstance(v, bool):
                raise RowError(key, f"expected 0 or 1, got {v!r}")
            out.append(
                (
                    Kind.COMPARISONS,
                    {
                        "prompt": prompt,
                        "response_a": ra,
                        "response_b": rb,
                        "model_a": opt_str(rec, "response_0_source"),
                        "model_b": opt_str(rec, "response_1_source"),
                        "outcome": "a" if str(v) == "0" else "b",
                        "aspect": aspect,
                        "meta": meta,
                    },
                )
            )
        return out


register_reader(SafeRLHFReader())
register_reader(UltraFeedbackReader())
register_reader(HelpSteerPreferenceReader())
register_reader(HelpSteer2Reader())
register_reader(SHPReader())
register_reader(OpenAIPreferenceReader())


FEEDBACK_BOOL = ("label", "thumbs_up", "liked", "accepted")
FEEDBACK_SCORE = ("score", "rating")


class OpenAIChatFeedbackReader(RecordReader):
    """Chat logs in OpenAI `messages` form with feedback on the last assistant message."""

    name = "openai-chat"
    description = (
        "OpenAI-style chat JSONL: messages (last one from the assistant) + label/thumbs_up"
        " (binary) or score/rating (ratings)"
    )
    kinds = (Kind.BINARY, Kind.RATINGS)
    example = (
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant",'
        ' "content": "Hello!"}], "thumbs_up": true, "model": "gpt-4o"}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if isinstance(rec.get("messages"), list) and (
            any(k in rec for k in FEEDBACK_BOOL) or any(k in rec for k in FEEDBACK_SCORE)
        ):
            return "messages + feedback field (OpenAI-style chat log)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        from prefkit.io.readers.trl import as_bool

        msgs = messages(need(rec, "messages"), "messages", "user")
        if len(msgs) < 2 or msgs[-1]["role"] != "assistant":
            raise RowError("messages", "the last message must be the assistant's answer")
        base: dict[str, Any] = {
            "prompt": msgs[:-1],
            "response": msgs[-1:],
            "model": opt_str(rec, "model"),
            "annotator": opt_str(rec, "user") or opt_str(rec, "annotator"),
        }
        bkey = next((k for k in FEEDBACK_BOOL if k in rec), None)
        used = ["messages", "model", "user", "annotator"]
        if bkey is not None:
            used.append(bkey)
            yield (
                Kind.BINARY,
                {
                    **base,
                    "label": as_bool(ctx.value("label", rec[bkey]), bkey),
                    "meta": meta_of(rec, used),
                },
            )
            return
        skey = next(k for k in FEEDBACK_SCORE if k in rec)
        used.append(skey)
        score = _number(rec[skey], skey)
        if score is None:
            raise RowError(skey, "required field is missing")
        yield Kind.RATINGS, {**base, "score": score, "meta": meta_of(rec, used)}


register_reader(OpenAIChatFeedbackReader())
