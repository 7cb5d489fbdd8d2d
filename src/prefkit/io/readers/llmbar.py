"""LLMBar-style pairs: `input`, `output_1`, `output_2`, `label` in {1, 2}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prefkit.io.base import register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    meta_of,
    need_str,
    need_text,
    outcome_from,
)
from prefkit.schema import Kind

LABELS = {"1": "a", "2": "b", "0": "tie"}


class LLMBarReader(RecordReader):
    name = "llmbar"
    description = "LLMBar pairs: input, output_1, output_2, label (1 or 2 = better output)"
    example = '{"input": "Summarize ...", "output_1": "...", "output_2": "...", "label": 1}'

    keys = frozenset({"input", "output_1", "output_2", "label"})
    why = "input/output_1/output_2/label (LLMBar)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        yield (
            Kind.COMPARISONS,
            {
                "prompt": need_str(rec, "input"),
                "response_a": need_text(rec, "output_1"),
                "response_b": need_text(rec, "output_2"),
                "outcome": outcome_from(rec.get("label"), "label", LABELS, ctx),
                "meta": meta_of(rec, ("input", "output_1", "output_2", "label")),
            },
        )


register_reader(LLMBarReader())
