"""The empirical-Bayes feature prior of bt-mixture (`fit_mixture(prior="evidence")`,
`aggregate --feature-prior`): on a simulated mixture whose groups' feature coefficients are
drawn with a known prior precision, the evidence update recovers that precision, and the
groups are still recovered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from prefkit.rank.mixture import FEATURE_PRIOR, MixtureData, fit_mixture
from prefkit.schema import from_rows
from tests.rank._data import invoke


def _mixture(precision: float, seed: int) -> tuple[MixtureData, np.ndarray]:
    """3 groups × 6 annotators, 250 votes each on fresh pairs; 12 standardised feature
    differences; group coefficients ~ N(0, 1/precision)."""
    rng = np.random.default_rng(seed)
    k, per, votes, p = 3, 6, 250, 12
    beta = rng.normal(0.0, 1.0 / np.sqrt(precision), (k, p))
    n = k * per
    label = np.repeat(np.arange(k), per)
    x = rng.normal(size=(n * votes, p))
    ann = np.repeat(np.arange(n), votes)
    pa = 1.0 / (1.0 + np.exp(-(x * beta[label[ann]]).sum(axis=1)))
    a_won = rng.random(pa.size) < pa
    y3 = np.zeros((pa.size, 3))
    y3[np.arange(pa.size), np.where(a_won, 0, 1)] = 1.0
    d = MixtureData(x, np.arange(pa.size), ann, y3, np.full(p, FEATURE_PRIOR),
                    tuple(f"w{q}" for q in range(n)), tuple(f"feature:f{q}" for q in range(p)))  # fmt: skip
    return d, label


@pytest.mark.parametrize("precision", [0.5, 4.0])
def test_evidence_prior_recovers_the_coefficients_precision(precision: float) -> None:
    d, label = _mixture(precision, seed=1)
    fit = fit_mixture(d, 3, np.random.default_rng(0), n_init=4, prior="evidence")
    assert fit.feature_prior is not None
    assert precision / 2.0 < fit.feature_prior < precision * 2.0
    assert adjusted_rand_score(label, fit.posterior.argmax(axis=1)) == 1.0
    fixed = fit_mixture(d, 3, np.random.default_rng(0), n_init=4)
    assert fixed.feature_prior is None
    assert adjusted_rand_score(label, fixed.posterior.argmax(axis=1)) == 1.0


def test_evidence_prior_leaves_a_design_without_features_alone() -> None:
    """Votes alone (item columns only): nothing to choose, the fit is the fixed-prior fit."""
    d, label = _mixture(1.0, seed=2)
    items = MixtureData(d.x, d.unit, d.annotator, d.y3, np.full(12, 0.1), d.annotators,
                        tuple(f"m{q}" for q in range(12)))  # fmt: skip
    a = fit_mixture(items, 3, np.random.default_rng(0), n_init=2, prior="evidence")
    b = fit_mixture(items, 3, np.random.default_rng(0), n_init=2)
    assert a.feature_prior is None and a.objective == b.objective
    assert np.array_equal(a.posterior, b.posterior)


def test_aggregate_feature_prior_flag(tmp_path: Path) -> None:
    """`aggregate --method bt-mixture --feature-prior evidence|fixed` on text votes of two camps
    (one likes long answers, the other short ones): both split the camps; evidence reports the
    precision it chose, fixed keeps 1.0; a bad value is a usage error."""
    rng = np.random.default_rng(0)
    rows = []
    for w in range(8):
        camp = 1.0 if w < 4 else -1.0
        for n in range(60):
            long = "Here is a full answer. " + " ".join(
                f"Point {q + 1}: step {n % 5 + q} matters." for q in range(2 + n % 4)
            )
            short = f"Do step {n % 5 + 1}."
            a_long = bool(rng.random() < 0.5)
            long_wins = bool(rng.random() < 1.0 / (1.0 + np.exp(-2.5 * camp)))
            rows.append({"prompt": f"How do I do task {n}?", "annotator": f"w{w}",
                         "response_a": long if a_long else short,
                         "response_b": short if a_long else long,
                         "outcome": "a" if long_wins == a_long else "b"})  # fmt: skip
    src = tmp_path / "votes.parquet"
    pq.write_table(from_rows(rows, "comparisons"), src)
    got = {}
    for prior in ("evidence", "fixed"):
        code, err, stdout = invoke("aggregate", str(src), str(tmp_path / prior / "g.parquet"),
                                   "--method", "bt-mixture", "--groups", "2",
                                   "--feature-prior", prior, "--json")  # fmt: skip
        assert code == 0, err
        got[prior] = json.loads(stdout.strip().splitlines()[-1])
        ann = pq.read_table(tmp_path / prior / "annotators.parquet").to_pydict()
        camp = [a in {f"w{w}" for w in range(4)} for a in ann["annotator"]]
        assert adjusted_rand_score(camp, ann["group"]) == 1.0
    assert got["evidence"]["feature_prior"] == "evidence"
    assert got["evidence"]["priors"]["features"] != FEATURE_PRIOR
    assert got["fixed"]["feature_prior"] == "fixed"
    assert got["fixed"]["priors"]["features"] == FEATURE_PRIOR
    code, err, _ = invoke("aggregate", str(src), str(tmp_path / "x.parquet"), "--method",
                          "bt-mixture", "--feature-prior", "magic")  # fmt: skip
    assert code == 2 and "--feature-prior" in err
