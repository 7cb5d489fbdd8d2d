"""TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats).

- preference: `prompt` (optional) / `chosen` / `rejected`, standard (strings) or conversational
  (message lists); without `prompt` the shared prefix of chosen and rejected is the prompt
  (implicit prompt). -> comparisons, outcome `a` (response_a = chosen).
- unpaired preference (KTO): `prompt` / `completion` / `label` (bool) -> binary.
- stepwise supervision: `prompt` / `completions` (list) / `labels` (list of bool) -> one binary
  row per step, `meta.step` / `meta.steps` and the earlier steps appended to the prompt.
"""

from __future__ import annotations

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
    opt_str,
    shared_prefix,
)
from prefkit.io.readers._records import type_name
from prefkit.schema import Kind

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


def as_bool(v: Any, field: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in TRUE | FALSE:
        return v.strip().lower() in TRUE
    if v is None:
        raise RowError(field, "required field is missing")
    raise RowError(field, f"expected a boolean, got {type_name(v)} {v!r}")


def _implicit_strings(c: str, r: str) -> tuple[str, str, str]:
    """TRL's implicit prompt for strings: the longest common prefix, cut at a word boundary."""
    n = 0
    for x, y in zip(c, r, strict=False):
        if x != y:
            break
        n += 1
    if n < min(len(c), len(r)):
        while n > 0 and not c[n - 1].isspace():
            n -= 1
    return c[:n], c[n:], r[n:]


class TRLPreferenceReader(RecordReader):
    name = "trl"
    description = "TRL preference: prompt?/chosen/rejected, standard or conversational"
    example = '{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"chosen", "rejected"} <= set(rec):
            style = "conversational" if isinstance(rec.get("chosen"), list) else "standard"
            how = "explicit" if "prompt" in rec else "implicit"
            return f"chosen/rejected ({style}, {how} prompt; TRL preference)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        c, r = need(rec, "chosen"), need(rec, "rejected")
        used = ["prompt", "chosen", "rejected"]
        prompt: Any
        ra: Any
        rb: Any
        if "prompt" in rec and rec["prompt"] is not None:
            prompt = messages(rec["prompt"], "prompt", "user")
            ra, rb = messages(c, "chosen"), messages(r, "rejected")
        elif isinstance(c, str) and isinstance(r, str):
            p, a, b = _implicit_strings(c, r)
            prompt, ra, rb = (p or None), a, b
        else:
            mc, mr = messages(c, "chosen"), messages(r, "rejected")
            n = shared_prefix(mc, mr)
            prompt, ra, rb = (mc[:n] or None), mc[n:], mr[n:]
        row: dict[str, Any] = {
            "prompt": prompt,
            "response_a": ra,
            "response_b": rb,
            "outcome": "a",
            "model_a": opt_str(rec, "chosen_model") or opt_str(rec, "chosen-model"),
            "model_b": opt_str(rec, "rejected_model") or opt_str(rec, "rejected-model"),
        }
        used += ["chosen_model", "rejected_model", "chosen-model", "rejected-model"]
        margin = rec.get("margin")
        if isinstance(margin, int | float) and not isinstance(margin, bool) and 0 <= margin <= 1:
            row["strength"] = float(margin)
        row["meta"] = meta_of(rec, used)
        yield Kind.COMPARISONS, row


class TRLUnpairedReader(RecordReader):
    name = "trl-unpaired"
    description = "TRL unpaired preference / KTO: prompt/completion/label (bool)"
    kinds = (Kind.BINARY,)
    example = '{"prompt": "The sky is", "completion": " blue.", "label": true}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"completion", "label"} <= set(rec):
            return "prompt/completion/label (TRL unpaired / KTO)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        comp = need(rec, "completion")
        yield (
            Kind.BINARY,
            {
                "prompt": messages(rec["prompt"], "prompt", "user")
                if rec.get("prompt") is not None
                else None,
                "response": messages(comp, "completion"),
                "label": as_bool(ctx.value("label", rec.get("label")), "label"),
                "model": opt_str(rec, "model"),
                "meta": meta_of(rec, ("prompt", "completion", "label", "model")),
            },
        )


class TRLStepwiseReader(RecordReader):
    name = "trl-stepwise"
    description = "TRL stepwise supervision: prompt/completions/labels (one label per step)"
    kinds = (Kind.BINARY,)
    example = '{"prompt": "2+2?", "completions": ["2+2 is 4.", "So 4."], "labels": [true, true]}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"completions", "labels"} <= set(rec) and isinstance(rec.get("completions"), list):
            return "prompt/completions/labels lists (TRL stepwise supervision)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        steps, labels = need(rec, "completions"), need(rec, "labels")
        if not isinstance(steps, list) or not isinstance(labels, list):
            raise RowError("completions", "completions and labels must be lists")
        if len(steps) != len(labels):
            raise RowError("labels", f"{len(labels)} labels for {len(steps)} completions")
        prompt = messages(need(rec, "prompt"), "prompt", "user")
        meta = meta_of(rec, ("prompt", "completions", "labels"))
        group = ctx.source + ":" + str(len(ctx.extra.setdefault("groups", [])))
        ctx.extra["groups"].append(None)
        done: list[str] = []
        out = []
        for i, (s, lab) in enumerate(zip(steps, labels, strict=True)):
            if not isinstance(s, str):
                raise RowError("completions", f"step {i} is {type_name(s)}, not a string")
            out.append(
                (
                    Kind.BINARY,
                    {
                        "id": f"{group}:{i}",
                        "prompt": prompt,
                        "response": s,
                        "label": as_bool(lab, "labels"),
                        "meta": {
                            **meta,
                            "step": str(i),
                            "steps": str(len(steps)),
                            "group": group,
                            "previous_steps": "\n".join(done),
                        },
                    },
                )
            )
            done.append(s)
        return out


register_reader(TRLStepwiseReader())
register_reader(TRLUnpairedReader())
register_reader(TRLPreferenceReader())
