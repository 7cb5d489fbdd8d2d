"""Agreement statistics on the real PandaLM test set against independent implementations."""

from __future__ import annotations

from pathlib import Path

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from prefkit.audit.agreement import find_agreement, fleiss_kappa, votes
from prefkit.audit.frame import Frame
from prefkit.io.detect import read
from prefkit.schema import from_rows
from tests.raw import pandalm_items

PANDALM = "pandalm_testset/data/testset-v1.json"


@pytest.fixture(scope="module")
def pandalm(data_dir: Path) -> Frame:
    return Frame.of(read(data_dir / PANDALM).table)


def test_krippendorff_alpha_equals_package_on_pandalm(pandalm: Frame) -> None:
    f = pandalm
    res = find_agreement(f)
    # the package's own input form: annotators x items, NaN where missing
    v = votes(f)
    ann = sorted(set(v.annotator.tolist()))
    data = np.full((len(ann), v.n_items), np.nan)
    for a, i, lab in zip(v.annotator, v.item, v.label, strict=True):
        data[ann.index(int(a)), int(i)] = float(lab)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert res.summary["krippendorff_alpha"] == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0
    assert res.summary["items_with_votes"] == pandalm_items()  # plain json over the file
    assert res.summary["votes_per_item"]["max"] == 3


def test_fleiss_kappa_equals_statsmodels_on_pandalm(pandalm: Frame) -> None:
    v = votes(pandalm)
    expected = sm_fleiss(v.counts, method="fleiss")
    assert fleiss_kappa(v.counts) == pytest.approx(expected, abs=1e-12)
    assert find_agreement(pandalm).summary["fleiss_kappa"] == pytest.approx(expected, abs=1e-12)


def test_ties_are_a_category_and_cohen_kappa_matches_sklearn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "tie"], size=300, p=[0.45, 0.4, 0.15])
    x = [t if rng.random() < 0.8 else rng.choice(["a", "b", "tie"]) for t in truth]
    y = [t if rng.random() < 0.7 else rng.choice(["a", "b", "tie"]) for t in truth]
    rows = []
    for i, (ox, oy) in enumerate(zip(x, y, strict=True)):
        for ann, o in (("x", ox), ("y", oy)):
            rows.append(
                {
                    "prompt": f"p{i}",
                    "response_a": f"A{i}",
                    "response_b": f"B{i}",
                    "outcome": o,
                    "annotator": ann,
                }
            )
    res = find_agreement(Frame.of(from_rows(rows, "comparisons")))
    assert res.summary["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y), abs=1e-12)
    raw = float(np.mean(np.asarray(x) == np.asarray(y)))
    assert res.summary["raw_agreement"] == pytest.approx(raw)


def test_no_overlap_means_no_agreement_numbers() -> None:
    rows = [
        {"prompt": f"p{i}", "response_a": "x", "response_b": "y", "outcome": "a", "annotator": "u"}
        for i in range(5)
    ]
    res = find_agreement(Frame.of(from_rows(rows, "comparisons")))
    assert res.summary["items_with_votes"] == 0
    assert len(res) == 0
