"""Interpretable features of responses for `prefkit explain`, computed column-wise with Arrow.

The features are the reward stage's (`prefkit.reward.features.feature_columns`: one
implementation, column-wise over Arrow arrays), computed for the subset listed here. Two
features the explanation literature tests and the reward model does not use are added here:
`links` and `second_person`.

Only one length feature (`log_chars`) is used: the reward model's other length proxies
(`log_words`, `log_unique_words`, `log_unique_trigrams`, `n_lines`) correlate above 0.9 with it
and would split one effect over five columns; "length-controlled" then means one column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.reward import features as rf

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # what a reader sees in the report
    group: str  # length | format | tone | content | readability | degeneration
    unit: str  # what one unit of the raw value is


FEATURES: tuple[Feature, ...] = (
    Feature("log_chars", "length", "length", "log(1 + characters)"),
    Feature("bullets", "lists", "format", "log(1 + list items)"),
    Feature("headers", "headings", "format", "log(1 + markdown headings)"),
    Feature("code_blocks", "code blocks", "format", "has a ``` block (0/1)"),
    Feature("bold", "bold text", "format", "log(1 + **bold** spans)"),
    Feature("links", "links", "format", "log(1 + URLs and markdown links)"),
    Feature("numbers", "numbers", "content", "log(1 + digit runs)"),
    Feature("question_marks", "questions to the user", "tone", "log(1 + question marks)"),
    Feature("exclamations", "exclamations", "tone", "log(1 + exclamation marks)"),
    Feature("refusal", "refusal phrases", "tone", "has a refusal phrase (0/1)"),
    Feature("hedging", "hedging", "tone", "log(1 + hedging phrases)"),
    Feature("apology", "apology", "tone", "apologises (0/1)"),
    Feature("second_person", "second person", "tone", "log(1 + you/your words)"),
    Feature("prompt_overlap", "overlap with the prompt", "content", "share of words in prompt"),
    Feature("avg_word_len", "word length", "readability", "mean word length / 10"),
    Feature("avg_sentence_len", "sentence length", "readability", "log(1 + words per sentence)"),
    Feature("repeated_trigrams", "repetition", "degeneration", "share of repeated 3-grams"),
    Feature("unfinished", "unfinished ending", "degeneration", "ends without punctuation (0/1)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
LENGTH_FEATURES: tuple[str, ...] = ("log_chars",)
EXPLAIN_ONLY: tuple[str, ...] = ("links", "second_person")
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

_LINK = r"(?i)\bhttps?://[^\s<>()\[\]]+|\bwww\.[^\s<>()\[\]]+|\[[^\]\n]+\]\([^)\s]+\)"
_YOU = r"(?i)\b(?:you|your|yours|yourself|yourselves|you're|you've|you'll|you'd)\b"


def _count(text: pa.Array, regex: str) -> F64:
    return np.asarray(pc.count_substring_regex(text, regex), dtype=np.float64)


def text_features(
    prompts: pa.Array | list[str], responses: pa.Array | list[str]
) -> tuple[F64, list[str]]:
    """Feature matrix (n, len(FEATURES)) of each (prompt, response) and the feature names.

    Shared columns are `prefkit.reward.features.feature_columns` (see module doc)."""
    shared = [f for f in FEATURE_NAMES if f not in EXPLAIN_ONLY]
    cols = rf.feature_columns(prompts, responses, shared)
    rs = rf.as_text(responses)
    n = len(rs)
    if n == 0:
        return np.zeros((0, len(FEATURES))), list(FEATURE_NAMES)
    cols["links"] = np.log1p(_count(rs, _LINK))
    cols["second_person"] = np.log1p(_count(rs, _YOU))
    x = np.column_stack([cols[f] for f in FEATURE_NAMES]).astype(np.float64)
    return x, list(FEATURE_NAMES)
