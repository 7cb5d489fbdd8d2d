"""Bradley–Terry and Davidson models of a vote on covariates alone (no item strengths):

    eta = x · beta,   x = standardized feature difference (response a minus response b)

with ties as in `prefkit rank` (Davidson 1970: P(a) ∝ e^{eta/2}, P(b) ∝ e^{-eta/2},
P(tie) ∝ nu, tau = log nu); the per-vote likelihood and its derivatives are
`prefkit.rank.bt.derivs`, shared with the leaderboard. Without ties the model is BT.

- `fit`: penalised maximum likelihood by Newton's method (an L2 penalty towards a centre,
  tiny by default: it keeps estimates finite under separation; a per-coefficient precision
  and centre give the hierarchical per-annotator fits);
- `lasso_path`: the L1 path by proximal Newton (a quadratic model of the mean negative
  log-likelihood, minimised by coordinate descent on the p x p Hessian, then a line search);
- `cv_path`: the L1 strength by K-fold cross-validation with folds by group (prompt), the
  minimum and the one-standard-error choice (glmnet's lambda.1se);
- `stability`: stability selection (Meinshausen & Bühlmann 2010) by complementary pairs of
  half-samples of groups (Shah & Samworth 2013), optionally randomized (weakness);
- `bootstrap`: cluster bootstrap by group of the penalised MLE (warm-started Newton).

Counts `y` are (n, 3): a wins, b wins, ties, possibly weighted; `group` labels clusters
(prompts) for CV folds and resampling. Everything takes an explicit numpy Generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from prefkit.rank.bt import derivs

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

RIDGE = 1e-4  # default L2 precision per vote (mean-likelihood scale): keeps MLEs finite


def model_for(y: F64) -> str:
    """Davidson when the data has ties and decisive votes, else BT."""
    return "davidson" if float(y[:, 2].sum()) > 0 and float(y[:, :2].sum()) > 0 else "bt"


def tie_init(y: F64) -> float:
    tot = float(y.sum())
    pt = float(np.clip(y[:, 2].sum() / tot, 1e-3, 0.999)) if tot > 0 else 0.1
    return float(np.log(2.0 * pt / (1.0 - pt)))


@dataclass(frozen=True)
class GLM:
    """A fitted model: coefficients, tie parameter (log nu; 0 for BT), negative
    log-likelihood (sum, without penalty), the Hessian of the penalised objective over
    (beta, tau) and the Newton iterations used."""

    beta: F64
    tau: float
    model: str
    nll: float
    hess: F64
    iterations: int

    @property
    def nu(self) -> float | None:
        return float(np.exp(self.tau)) if self.model == "davidson" else None


def _parts(
    x: F64, y: F64, model: str, beta: F64, tau: float, want_hess: bool = True
) -> tuple[float, F64, F64 | None]:
    """Negative log-likelihood, gradient and Hessian over (beta[, tau])."""
    eta = x @ beta
    d = derivs(model, eta, tau, y)  # type: ignore[arg-type]
    f = float(d.f.sum())
    g = x.T @ d.fe
    tie = model == "davidson"
    if tie:
        g = np.append(g, float(d.ft.sum()))
    if not want_hess:
        return f, g, None
    p = x.shape[1]
    m = p + int(tie)
    h = np.empty((m, m))
    h[:p, :p] = (x * d.fee[:, None]).T @ x
    if tie:
        c = x.T @ d.fet
        h[:p, p] = c
        h[p, :p] = c
        h[p, p] = float(d.ftt.sum())
    return f, g, h


def fit(
    x: F64,
    y: F64,
    model: str | None = None,
    l2: float = RIDGE,
    prec: F64 | None = None,
    center: F64 | None = None,
    beta0: F64 | None = None,
    tau0: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-8,
    tau_prec: float = 0.0,
    tau_center: float = 0.0,
) -> GLM:
    """Penalised MLE: NLL + 1/2 sum_f prec_f (beta_f - center_f)^2 (+ 1/2 tau_prec
    (tau - tau_center)^2 for Davidson); `prec` defaults to l2 * (number of votes), `center`
    to 0."""
    model = model or model_for(y)
    n, p = x.shape
    tot = float(y.sum())
    pr = np.full(p, l2 * max(tot, 1.0)) if prec is None else np.asarray(prec, dtype=np.float64)
    c = np.zeros(p) if center is None else np.asarray(center, dtype=np.float64)
    tie = model == "davidson"
    beta = np.zeros(p) if beta0 is None else beta0.astype(np.float64, copy=True)
    tau = (tie_init(y) if tau0 is None else tau0) if tie else 0.0

    def pen(b: F64, t: float) -> float:
        return 0.5 * float((pr * (b - c) ** 2).sum()) + 0.5 * tau_prec * (t - tau_center) ** 2

    def obj(b: F64, t: float) -> float:
        return _parts(x, y, model, b, t, want_hess=False)[0] + pen(b, t)

    def add_pen(g: F64, h: F64, b: F64, t: float) -> tuple[F64, F64]:
        g = g.copy()
        g[:p] += pr * (b - c)
        h[np.arange(p), np.arange(p)] += pr
        if tie:
            g[p] += tau_prec * (t - tau_center)
            h[p, p] += tau_prec
        return g, h

    f, g, h = _parts(x, y, model, beta, tau)
    assert h is not None
    f += pen(beta, tau)
    it = 0
    while it < max_iter:
        it += 1
        g, h = add_pen(g, h, beta, tau)
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(h + 1e-9 * np.eye(h.shape[0]), g, rcond=None)[0]
        s = 1.0
        for _ in range(50):
            nb = beta - s * step[:p]
            nt = tau - s * float(step[p]) if tie else 0.0
            fn = obj(nb, nt)
            if np.isfinite(fn) and fn <= f + 1e-12 * abs(f):
                break
            s *= 0.5
        beta, tau = nb, nt
        done = step.size == 0 or float(np.abs(s * step).max()) < tol
        f, g, h = _parts(x, y, model, beta, tau)
        assert h is not None
        f += pen(beta, tau)
        if done:
            break
    g, h = add_pen(g, h, beta, tau)
    return GLM(beta, tau, model, f - pen(beta, tau), h, it)


def nll_of(x: F64, y: F64, model: str, beta: F64, tau: float) -> float:
    return _parts(x, y, model, beta, tau, want_hess=False)[0]


# ---------------------------------------------------------------------------------------
# L1 path


def lambda_max(x: F64, y: F64, model: str) -> float:
    """The smallest L1 strength (mean-likelihood scale) at which every coefficient is 0."""
    tot = max(float(y.sum()), 1.0)
    g0 = fit(x[:, :0], y, model, l2=0.0)
    _, g, _ = _parts(x, y, model, np.zeros(x.shape[1]), g0.tau, want_hess=False)
    return float(np.abs(g[: x.shape[1]]).max()) / tot


def _cd(
    g: F64, h: F64, z0: F64, theta: F64, lam: F64, sweeps: int = 200, tol: float = 1e-10
) -> F64:
    """Minimise g.(z - theta) + 1/2 (z - theta)' H (z - theta) + sum_j lam_j |z_j| by cyclic
    coordinate descent from z0 (lam_j = 0 for unpenalized coordinates)."""
    z = z0.copy()
    hd = h @ (z - theta)
    diag = np.maximum(np.diag(h), 1e-12)
    m = z.size
    for _ in range(sweeps):
        delta_max = 0.0
        for j in range(m):
            a = diag[j]
            u = a * z[j] - g[j] - hd[j]
            lj = lam[j]
            if lj > 0:
                new = np.sign(u) * max(abs(u) - lj, 0.0) / a
            else:
                new = u / a
            dz = new - z[j]
            if dz != 0.0:
                z[j] = new
                hd += h[:, j] * dz
                delta_max = max(delta_max, abs(dz))
        if delta_max < tol:
            break
    return z


def lasso_fit(
    x: F64,
    y: F64,
    model: str,
    lam: float,
    penalty: F64 | None = None,
    beta0: F64 | None = None,
    tau0: float | None = None,
    max_outer: int = 50,
    tol: float = 1e-7,
) -> tuple[F64, float]:
    """Minimise NLL/N + lam * sum_f penalty_f |beta_f| (proximal Newton). Returns (beta, tau)."""
    n, p = x.shape
    tot = max(float(y.sum()), 1.0)
    tie = model == "davidson"
    pen = np.ones(p) if penalty is None else penalty
    lam_vec = np.concatenate([lam * pen, np.zeros(int(tie))])
    beta = np.zeros(p) if beta0 is None else beta0.astype(np.float64, copy=True)
    tau = (tie_init(y) if tau0 is None else tau0) if tie else 0.0
    theta = np.concatenate([beta, [tau] if tie else []])

    def objective(th: F64) -> float:
        f = _parts(x, y, model, th[:p], float(th[p]) if tie else 0.0, want_hess=False)[0]
        return f / tot + float((lam_vec * np.abs(th)).sum())

    f_cur = objective(theta)
    for _ in range(max_outer):
        f, g, h = _parts(x, y, model, theta[:p], float(theta[p]) if tie else 0.0)
        assert h is not None
        g, h = g / tot, h / tot + 1e-10 * np.eye(h.shape[0])
        z = _cd(g, h, theta, theta, lam_vec)
        step = z - theta
        if float(np.abs(step).max()) < tol:
            break
        s = 1.0
        for _ in range(40):
            cand = theta + s * step
            fc = objective(cand)
            if fc <= f_cur + 1e-12:
                break
            s *= 0.5
        theta, f_cur = cand, fc
        if float(np.abs(s * step).max()) < tol:
            break
    return theta[:p].copy(), float(theta[p]) if tie else 0.0


def lambda_grid(lmax: float, n: int = 30, ratio: float = 1e-3) -> F64:
    return np.asarray(lmax * np.logspace(0, np.log10(ratio), n), dtype=np.float64)


def lasso_path(
    x: F64, y: F64, model: str, lambdas: F64, penalty: F64 | None = None
) -> tuple[F64, F64]:
    """Coefficients (L, p) and tie parameters (L,) along decreasing `lambdas` (warm starts)."""
    p = x.shape[1]
    betas = np.zeros((lambdas.size, p))
    taus = np.zeros(lambdas.size)
    beta, tau = np.zeros(p), None
    for k, lam in enumerate(lambdas.tolist()):
        beta, t = lasso_fit(x, y, model, lam, penalty, beta, tau)
        tau = t
        betas[k], taus[k] = beta, t
    return betas, taus


def group_folds(group: I64, k: int, rng: np.random.Generator) -> I64:
    """Fold 0..k-1 of each row; every group (prompt) lies in one fold."""
    ug, inv = np.unique(group, return_inverse=True)
    fold_of = rng.permutation(ug.size) % k
    return np.asarray(fold_of[inv], dtype=np.int64)


@dataclass(frozen=True)
class CVPath:
    lambdas: F64
    loss: F64  # mean held-out negative log-likelihood per vote, per lambda
    se: F64  # its standard error over folds
    lam_min: float
    lam_1se: float
    folds: int


def cv_path(
    x: F64,
    y: F64,
    group: I64,
    model: str,
    rng: np.random.Generator,
    k: int = 5,
    lambdas: F64 | None = None,
) -> CVPath:
    """K-fold cross-validation of the L1 path with folds by group."""
    lam = lambda_grid(lambda_max(x, y, model)) if lambdas is None else lambdas
    k = max(2, min(k, int(np.unique(group).size)))
    fold = group_folds(group, k, rng)
    losses = np.zeros((k, lam.size))
    sizes = np.zeros(k)
    for f in range(k):
        tr, va = fold != f, fold == f
        betas, taus = lasso_path(x[tr], y[tr], model, lam)
        nv = max(float(y[va].sum()), 1.0)
        sizes[f] = nv
        for j in range(lam.size):
            losses[f, j] = nll_of(x[va], y[va], model, betas[j], float(taus[j])) / nv
    w = sizes / sizes.sum()
    mean = (losses * w[:, None]).sum(axis=0)
    se = np.sqrt(((losses - mean) ** 2 * w[:, None]).sum(axis=0) / max(k - 1, 1))
    j_min = int(np.argmin(mean))
    # glmnet's lambda.1se: the strongest penalty whose loss is within one standard error of
    # the minimum (measured: it keeps unplanted features out where the minimum does not)
    ok = np.flatnonzero(mean <= mean[j_min] + se[j_min])
    j_1se = int(ok.min()) if ok.size else j_min
    return CVPath(lam, mean, se, float(lam[j_min]), float(lam[j_1se]), k)


def stability(
    x: F64,
    y: F64,
    group: I64,
    model: str,
    lam: float,
    rng: np.random.Generator,
    pairs: int = 50,
    weakness: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> F64:
    """Selection frequency of each feature over 2 x `pairs` half-samples of groups
    (complementary pairs), each an L1 fit at `lam`. With weakness < 1 every feature's
    penalty is scaled by a draw from [weakness, 1] per fit (randomized lasso)."""
    p = x.shape[1]
    ug, inv = np.unique(group, return_inverse=True)
    counts = np.zeros(p)
    fits = 0
    beta0 = lasso_fit(x, y, model, lam)[0]
    for _ in range(pairs):
        half = rng.permutation(ug.size) < ug.size // 2
        for side in (half, ~half):
            rows = side[inv]
            if not rows.any():
                continue
            pen = np.asarray(rng.uniform(weakness, 1.0, size=p)) if weakness < 1.0 else None
            b, _ = lasso_fit(x[rows], y[rows], model, lam, pen, beta0)
            counts += np.abs(b) > 1e-10
            fits += 1
        if progress is not None:
            progress(1)
    return counts / max(fits, 1)


def cluster_weights(group: I64, rng: np.random.Generator, rounds: int) -> F64:
    """(rounds, n) bootstrap weights: groups drawn with replacement, each row weighted by how
    often its group was drawn."""
    ug, inv = np.unique(group, return_inverse=True)
    draws = rng.multinomial(ug.size, np.full(ug.size, 1.0 / ug.size), size=rounds)
    return np.asarray(draws[:, inv], dtype=np.float64)


def bootstrap(
    x: F64,
    y: F64,
    base: GLM,
    weights: F64,
    l2: float = RIDGE,
    progress: Callable[[int], None] | None = None,
) -> F64:
    """(rounds, p) coefficients refitted on each row of `weights` (warm-started Newton)."""
    out = np.zeros((weights.shape[0], x.shape[1]))
    for r in range(weights.shape[0]):
        w = weights[r]
        keep = w > 0
        g = fit(
            x[keep], y[keep] * w[keep, None], base.model, l2=l2, beta0=base.beta,
            tau0=base.tau if base.model == "davidson" else None,
        )  # fmt: skip
        out[r] = g.beta
        if progress is not None:
            progress(1)
    return out
