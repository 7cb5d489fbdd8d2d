"""Explain's features equal the per-text definition of the reward features (the reference in
tests/reward/per_row_features.py) on real data, and the two explain-only features count what
they say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from prefkit.audit.frame import joined_text
from prefkit.explain.features import EXPLAIN_ONLY, FEATURE_NAMES, text_features
from prefkit.io.detect import read
from prefkit.reward.features import re2
from prefkit.schema import Kind
from tests.reward.per_row_features import per_row_features

# HH-RLHF and PandaLM are compared column by column in tests/reward/test_features_columnar.py
REAL = ["llmbar/Dataset/LLMBar/Natural/dataset.json"]


@pytest.mark.parametrize("rel", REAL)
def test_shared_features_equal_reward_features(data_dir: Path, rel: str) -> None:
    t = read(data_dir / rel).tables[Kind.COMPARISONS]
    prompts, resp = joined_text(t.column("prompt")), joined_text(t.column("response_b"))
    x, names = text_features(prompts, resp)
    ref, ref_names = per_row_features(prompts.to_pylist(), resp.to_pylist())
    assert names == list(FEATURE_NAMES)
    shared = [n for n in names if n not in EXPLAIN_ONLY]
    assert set(shared) <= set(ref_names)
    for n in shared:
        np.testing.assert_allclose(
            x[:, names.index(n)], ref[:, ref_names.index(n)], rtol=0, atol=1e-12, err_msg=n
        )


def test_edge_texts_match_reward() -> None:
    prompts = ["", "Say hi", "List 3 things", "x", "Why?"]
    texts = [
        "",
        "   \n  ",
        "- one\n- two\n  3. three\n\n## Head\n**bold** and **more**\n```py\nx\n```",
        "I can't do that, sorry. Maybe later?! Perhaps I think it's 42 and 7",
        "ok ok ok ok ok ok ok word word word 1 2 3 end without stop",
    ]
    x, names = text_features(prompts, texts)
    ref, ref_names = per_row_features(prompts, texts)
    for n in names:
        if n in EXPLAIN_ONLY:
            continue
        np.testing.assert_allclose(x[:, names.index(n)], ref[:, ref_names.index(n)], err_msg=n)


def test_links_and_second_person_count_what_they_say() -> None:
    texts = [
        "See https://example.com/a and www.test.org, or [the docs](https://d.io/x).",
        "You should ask your doctor; you're right that yourself matters. YOU!",
        "No links here: example dot com. Youth and yours? 'yourselves'",
    ]
    x, names = text_features(["q"] * 3, texts)
    links = x[:, names.index("links")]
    you = x[:, names.index("second_person")]
    # independent counts, written out by hand
    assert links.tolist() == pytest.approx(np.log1p([3, 0, 0]).tolist())
    assert you.tolist() == pytest.approx(np.log1p([0, 5, 2]).tolist())


def test_re2_translation_keeps_python_meaning() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    pat = re.compile(r"^\s*\d+[.)]\s+", re.M)
    texts = ["1. a\n\u00a02) b\n３. c", "x 1. y"]
    want = [len(pat.findall(t)) for t in texts]
    got = pc.count_substring_regex(pa.array(texts), re2(pat)).to_pylist()
    assert got == want == [3, 0]
    # \S is Python's too: a no-break space is whitespace, so "# \u00a0" is no heading
    head = re.compile(r"^\s*#{1,6}\s+\S", re.M)
    texts = ["# \u00a0", "# x", "#\u2003y"]
    got = pc.count_substring_regex(pa.array(texts), re2(head)).to_pylist()
    assert got == [len(head.findall(t)) for t in texts] == [0, 1, 1]
