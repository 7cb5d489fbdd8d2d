"""The vote model against independent implementations: scipy on a Davidson likelihood written
out here, statsmodels' logistic regression, scikit-learn's L1 logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from prefkit.explain import model as M


def _data(n: int, p: int, seed: int, nu: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes drawn from a Davidson model with known coefficients."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:3] = [0.8, -0.5, 0.3]
    eta = x @ beta
    pa, pb, pt = np.exp(eta / 2), np.exp(-eta / 2), np.full(n, nu)
    z = pa + pb + pt
    u = rng.random(n)
    out = np.where(u < pa / z, 0, np.where(u < (pa + pb) / z, 1, 2))
    y = np.zeros((n, 3))
    y[np.arange(n), out] = 1
    return x, y, beta


def test_davidson_fit_matches_scipy_on_an_independent_likelihood() -> None:
    x, y, _ = _data(3000, 5, 0)

    def nll(theta: np.ndarray) -> float:
        b, tau = theta[:-1], theta[-1]
        eta = x @ b
        logz = np.log(np.exp(eta / 2) + np.exp(-eta / 2) + np.exp(tau))
        ll = y[:, 0] * (eta / 2 - logz) + y[:, 1] * (-eta / 2 - logz) + y[:, 2] * (tau - logz)
        return float(-ll.sum())

    ref = minimize(nll, np.zeros(6), method="BFGS", options={"gtol": 1e-8}).x
    got = M.fit(x, y, "davidson", l2=0.0)
    np.testing.assert_allclose(got.beta, ref[:-1], atol=2e-5)
    assert got.tau == pytest.approx(ref[-1], abs=2e-5)
    assert got.nll == pytest.approx(nll(ref), rel=1e-9)


def test_bt_fit_matches_statsmodels_logit() -> None:
    import statsmodels.api as sm

    x, y, _ = _data(2000, 4, 1, nu=0.0)
    got = M.fit(x, y, "bt", l2=0.0)
    ref = sm.Logit(y[:, 0], x).fit(disp=0)
    np.testing.assert_allclose(got.beta, ref.params, atol=1e-6)
    cov = np.linalg.inv(got.hess)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-5)


@pytest.mark.parametrize("lam", [0.002, 0.01, 0.05])
def test_lasso_matches_scikit_learn_l1_logistic(lam: float) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y, _ = _data(2000, 8, 2, nu=0.0)
    n = len(x)
    beta, _ = M.lasso_fit(x, y, "bt", lam, tol=1e-10)
    # scikit-learn minimises C * sum(log-loss) + |w|_1; ours mean log-loss + lam |w|_1
    ref = LogisticRegression(
        l1_ratio=1.0, C=1.0 / (lam * n), solver="liblinear", fit_intercept=False, tol=1e-10,
        max_iter=10_000,
    ).fit(x, y[:, 0])  # fmt: skip
    np.testing.assert_allclose(beta, ref.coef_[0], atol=2e-4)
    assert ((np.abs(beta) > 1e-8) == (np.abs(ref.coef_[0]) > 1e-8)).all()


def test_lambda_max_zeroes_everything_and_the_path_grows() -> None:
    x, y, _ = _data(1500, 6, 3)
    lmax = M.lambda_max(x, y, "davidson")
    b, _ = M.lasso_fit(x, y, "davidson", lmax * 1.0001)
    assert np.abs(b).max() == 0
    b2, _ = M.lasso_fit(x, y, "davidson", lmax * 0.9)
    assert np.abs(b2).max() > 0
    lams = M.lambda_grid(lmax, 10)
    betas, _ = M.lasso_path(x, y, "davidson", lams)
    nz = (np.abs(betas) > 1e-10).sum(axis=1)
    assert nz[0] == 0 and nz[-1] == 6 and np.all(np.diff(np.abs(betas).sum(axis=1)) >= -1e-9)


def test_grouped_cv_keeps_groups_together_and_orders_strengths() -> None:
    x, y, _ = _data(2000, 6, 4)
    group = np.repeat(np.arange(400), 5)
    folds = M.group_folds(group, 5, np.random.default_rng(0))
    for g in range(400):
        assert len(set(folds[group == g].tolist())) == 1
    cv = M.cv_path(x, y, group, "davidson", np.random.default_rng(0))
    assert cv.lam_1se >= cv.lam_min
    assert cv.loss.min() == pytest.approx(cv.loss[np.argmin(cv.loss)])


def test_stability_separates_signal_from_noise() -> None:
    x, y, beta = _data(3000, 8, 5)
    group = np.arange(3000)
    lam = M.cv_path(x, y, group, "davidson", np.random.default_rng(1)).lam_1se
    plain = M.stability(x, y, group, "davidson", lam, np.random.default_rng(2), pairs=20)
    assert (plain[:3] == 1.0).all() and (plain[3:] <= 0.25).all()
    # randomized lasso (weakness 0.2) lets more noise through on independent features: that
    # is why explain also asks for the effect's interval to exclude 0 before "selected"
    rand = M.stability(
        x, y, group, "davidson", lam, np.random.default_rng(2), pairs=20, weakness=0.2
    )
    assert (rand[:3] == 1.0).all() and rand[3:].mean() < 0.5


def test_cluster_bootstrap_se_agrees_with_the_information_matrix() -> None:
    x, y, _ = _data(4000, 4, 6)
    base = M.fit(x, y, "davidson")
    w = M.cluster_weights(np.arange(4000), np.random.default_rng(3), 200)
    draws = M.bootstrap(x, y, base, w)
    se_boot = draws.std(axis=0, ddof=1)
    se_info = np.sqrt(np.diag(np.linalg.inv(base.hess))[:4])
    np.testing.assert_allclose(se_boot, se_info, rtol=0.2)
    # every draw resamples whole groups: weights are counts summing to the number of groups
    groups = np.repeat(np.arange(100), 3)
    w2 = M.cluster_weights(groups, np.random.default_rng(4), 5)
    assert (w2.reshape(5, 100, 3) == w2.reshape(5, 100, 3)[:, :, :1]).all()
    assert (w2.sum(axis=1) == 300).all()
