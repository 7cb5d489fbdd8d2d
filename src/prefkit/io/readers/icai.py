"""ICAI-style pairs: `text_a`, `text_b`, `preferred_text` in {text_a, text_b, tie, tie (bothbad)}.

When both texts start with the same `Instruction: ...\\n\\nOutput: ` header, the instruction
is the prompt and the rest the responses; an `input` column, when present, is the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from prefkit.io.base import register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    meta_of,
    need_str,
    opt_str,
    outcome_from,
)
from prefkit.schema import Kind

PREFERRED = {"text_a": "a", "text_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
_HEADER = re.compile(r"^Instruction:(.*?)\n\nOutput:[ ]?", re.S)


def _split(a: str, b: str) -> tuple[str | None, str, str]:
    ma, mb = _HEADER.match(a), _HEADER.match(b)
    if ma and mb and ma.group(1) == mb.group(1):
        return ma.group(1).strip(), a[ma.end() :], b[mb.end() :]
    return None, a, b


class ICAIReader(RecordReader):
    name = "icai"
    description = "ICAI pairs: text_a/text_b/preferred_text (text_a, text_b, tie, tie (bothbad))"
    example = (
        'index,text_a,text_b,preferred_text\n0,"Instruction: ...\\n\\nOutput: ...","...",text_b'
    )

    keys = frozenset({"text_a", "text_b", "preferred_text"})
    why = "text_a/text_b/preferred_text columns (ICAI)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        a, b = need_str(rec, "text_a"), need_str(rec, "text_b")
        outcome = outcome_from(rec.get("preferred_text"), "preferred_text", PREFERRED, ctx)
        prompt = opt_str(rec, "input")
        used = ["text_a", "text_b", "preferred_text", "model_a", "model_b"]
        if prompt is None:
            prompt, a, b = _split(a, b)
        else:
            used.append("input")
        index = rec.get("index", rec.get(""))
        row: dict[str, Any] = {
            "prompt": prompt,
            "response_a": a,
            "response_b": b,
            "model_a": opt_str(rec, "model_a"),
            "model_b": opt_str(rec, "model_b"),
            "outcome": outcome,
            "meta": meta_of(rec, used),
        }
        if index not in (None, ""):
            row["id"] = f"{ctx.source}:{index}"
        yield Kind.COMPARISONS, row


register_reader(ICAIReader())


class AnnotatedPairsReader(RecordReader):
    """Feedback Forensics / ICAI AnnotatedPairs JSON (v2): one row per non-null annotation."""

    name = "annotated-pairs"
    description = "ICAI / Feedback Forensics AnnotatedPairs JSON: comparisons with annotations"
    example = (
        '{"comparisons": [{"id": "4b49", "prompt": "...", "response_a": {"text": "...",'
        ' "model": "X"}, "response_b": {...}, "annotations": {"ba75": {"pref": "a"}}}]}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if isinstance(rec.get("response_a"), Mapping) and isinstance(
            rec.get("annotations"), Mapping
        ):
            return "comparisons with response_a/response_b objects and annotations (ICAI)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        from prefkit.io.readers._base import RowError

        ra, rb = rec.get("response_a"), rec.get("response_b")
        if not isinstance(ra, Mapping) or not isinstance(rb, Mapping):
            raise RowError("response_b", "expected objects with 'text'")
        anns = rec.get("annotations")
        if not isinstance(anns, Mapping):
            raise RowError("annotations", "required field is missing")
        base = str(rec.get("id", ""))
        meta = meta_of(rec, ("prompt", "response_a", "response_b", "annotations", "id"))
        out: list[Row] = []
        for annotator, a in anns.items():
            pref = a.get("pref") if isinstance(a, Mapping) else None
            if pref is None:
                continue
            out.append(
                (
                    Kind.COMPARISONS,
                    {
                        "id": f"{ctx.source}:{base}:{annotator}",
                        "prompt": opt_str(rec, "prompt"),
                        "response_a": need_str(ra, "text"),
                        "response_b": need_str(rb, "text"),
                        "model_a": opt_str(ra, "model"),
                        "model_b": opt_str(rb, "model"),
                        "outcome": outcome_from(pref, "pref", PREFERRED, ctx),
                        "annotator": str(annotator),
                        "meta": {**meta, "pair_id": base},
                    },
                )
            )
        if not out:
            raise RowError("annotations", "no annotation with a preference")
        return out


register_reader(AnnotatedPairsReader())
