"""The column-wise reward features equal the per-text Python definition (tests/reward/
per_row_features.py, the implementation models were trained with before) on real data sets and
on generated Unicode / markdown / empty text; saved feature models score the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefkit.audit.frame import joined_text
from prefkit.io.detect import read
from prefkit.reward import features as rf
from prefkit.schema import Kind
from tests.reward.per_row_features import NAMES, per_row_features

REAL = [  # (file, which response column)
    ("hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz", "response_a"),
    ("pandalm_testset/data/testset-v1.json", "response_b"),
]


def assert_same(prompts: list[str], responses: list[str]) -> None:
    x, names = rf.response_features(prompts, responses)
    ref, ref_names = per_row_features(prompts, responses)
    assert names == ref_names
    for j, name in enumerate(names):
        np.testing.assert_allclose(x[:, j], ref[:, j], rtol=1e-12, atol=1e-12, err_msg=name)


def test_names_and_order_are_the_saved_models() -> None:
    # a model saved before the features were vectorised stores this list: never reorder it
    assert rf.FEATURE_NAMES == NAMES


@pytest.mark.parametrize(("rel", "side"), REAL)
def test_equal_per_row_definition_on_real_data(data_dir: Path, rel: str, side: str) -> None:
    t = read(data_dir / rel).tables[Kind.COMPARISONS]
    prompts = joined_text(t.column("prompt")).to_pylist()
    assert_same(prompts, joined_text(t.column(side)).to_pylist())


# characters where RE2/Arrow and Python's re/str could disagree: Unicode spaces and digits,
# case folding to ASCII (Kelvin sign, long s, dotless and dotted i), superscripts (isdigit but
# not isdecimal), non-ASCII letters next to keywords (\b), combining marks, markdown
TRICKY = (
    " \t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u2028\u2029\u3000"
    "\u212a\u017f\u0131\u0130\u00b2\u2460\u0663\uff13\u00e9\u0301\u03a3\u4e2d"
    "#*-`.!?:;'\"()[]{}•0123456789"
)
WORDS = [
    "sorry", "apologise", "I can't", "i cannot", "illegal", "maybe", "Perhaps", "I think",
    "as an AI", "unable to", "the", "pen", "ruler", "**bold**", "```", "## Head", "- item",
    "1. step", "2) step", "http://x.io", "ſorry", "ıllegal", "Kelvın", "éperhaps", "sorryé",
]  # fmt: skip
piece = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=TRICKY, max_size=6),
    st.text(max_size=8),  # any Unicode (no surrogates)
)
texts = st.lists(piece, max_size=25).map(" ".join) | st.lists(piece, max_size=12).map("\n".join)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=8))
def test_equal_per_row_definition_on_generated_text(pairs: list[tuple[str, str]]) -> None:
    prompts = [p for p, _ in pairs] * 2
    # as generated, and with the prompt copied in twice (echo, overlap, repeated lines)
    responses = [r for _, r in pairs] + [f"{p}\n{p}\n{r}" for p, r in pairs]
    assert_same(prompts, responses)


def test_empty_and_null_inputs() -> None:
    x, names = rf.response_features([], [])
    assert x.shape == (0, len(names))
    arrow, _ = rf.response_features(pa.array(["q", None]), pa.array([None, "A reply."]))
    ref, _ = per_row_features(["q", ""], ["", "A reply."])
    np.testing.assert_allclose(arrow, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="unknown feature"):
        rf.feature_columns(["q"], ["a"], ["no_such"])


def test_saved_feature_model_scores_as_with_per_row_features(
    tmp_path: Path, data_dir: Path
) -> None:
    from prefkit.reward.models import FeatureModel

    t = read(data_dir / REAL[1][0]).tables[Kind.COMPARISONS].slice(0, 300)
    prompts = joined_text(t.column("prompt")).to_pylist()
    resp = joined_text(t.column("response_a")).to_pylist()
    ref, _ = per_row_features(prompts, resp)
    rng = np.random.default_rng(0)
    k = len(NAMES)
    mean, std, beta = ref.mean(0), ref.std(0) + 0.5, rng.normal(size=k)
    FeatureModel(list(NAMES), mean, std, beta, np.ones(k)).save(tmp_path / "m")
    m = FeatureModel.load(tmp_path / "m")
    np.testing.assert_allclose(
        m.score(prompts, resp), ((ref - mean) / std) @ beta, rtol=1e-10, atol=1e-10
    )
