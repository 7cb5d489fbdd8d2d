"""The empirical-Bayes feature prior of bt-mixture (`fit_mixture(prior="evidence")`,
`aggregate --feature-prior`): on a simulated mixture whose groups' feature coefficients are
drawn with a known prior precision, the evidence update recovers that precision, and the
groups are still recovered."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from prefkit.rank.mixture import FEATURE_PRIOR, MixtureData, fit_mixture


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
