"""Bradley–Terry / logistic head on feature differences (numpy + scipy, no torch)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

F64 = NDArray[np.float64]


def one_blas_thread() -> AbstractContextManager[Any]:
    """Run the small linear-algebra calls of the heads on one BLAS thread. The matrices are
    tiny (rows × 30 or × 400); OpenBLAS's thread hand-off costs more than it saves, and on a
    busy machine one L-BFGS fit took 40× longer with its threads than without (0.37 s vs
    0.009 s, 1,200 × 27, load 10 on 2 cores)."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[Any] = threadpool_limits(limits=1, user_api="blas")
    return limits


def bt_loss(beta: F64, d: F64, y: F64, w: F64, lam: float) -> tuple[float, F64]:
    """Weighted soft-label logistic loss of Δ = d·β (mean over weight) + λ/2·|β|², and gradient."""
    z = d @ beta
    wsum = float(w.sum()) or 1.0
    loss = -(w * (y * log_expit(z) + (1 - y) * log_expit(-z))).sum() / wsum
    g = d.T @ (w * (expit(z) - y)) / wsum
    return float(loss + 0.5 * lam * beta @ beta), g + lam * beta


def log_loss(beta: F64, d: F64, y: F64, w: F64) -> float:
    return bt_loss(beta, d, y, w, 0.0)[0]


@dataclass(frozen=True)
class HeadFit:
    beta: F64
    se: F64
    lam: float
    train_loss: float
    val_loss: float | None
    epochs: int
    path: tuple[tuple[float, float, int], ...] = ()  # (lam, best val loss, best epoch) tried


def fit_lbfgs(d: F64, y: F64, w: F64, lam: float) -> tuple[F64, F64]:
    """Penalized maximum likelihood; standard errors from the inverse Hessian (sum-scaled)."""
    beta, cov = fit_lbfgs_cov(d, y, w, lam)
    return beta, np.sqrt(np.clip(np.diag(cov), 0, None))


def fit_lbfgs_cov(d: F64, y: F64, w: F64, lam: float) -> tuple[F64, F64]:
    """`fit_lbfgs` with the full covariance matrix of the coefficients (NaN when singular)."""
    k = d.shape[1]
    res = minimize(bt_loss, np.zeros(k), args=(d, y, w, lam), jac=True, method="L-BFGS-B")
    beta = np.asarray(res.x, dtype=np.float64)
    p = expit(d @ beta)
    wn = w / (float(w.sum()) or 1.0)
    # Hessian of the per-row-weighted total loss: Σ w p(1-p) d dᵀ + λ n I (w normalised to n rows)
    n_eff = float(w.sum()) ** 2 / float((w**2).sum()) if w.sum() > 0 else 1.0
    h = (d * (wn * p * (1 - p))[:, None]).T @ d * n_eff + lam * n_eff * np.eye(k)
    try:
        cov = np.asarray(np.linalg.inv(h), dtype=np.float64)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    return beta, cov


def fit_adam(
    d: F64,
    y: F64,
    w: F64,
    dv: F64 | None,
    yv: F64 | None,
    wv: F64 | None,
    lam: float,
    epochs: int,
    seed: int,
    lr: float = 0.05,
    batch: int = 256,
    patience: int = 5,
) -> HeadFit:
    """Mini-batch Adam with early stopping on validation log-loss (best epoch kept)."""
    rng = np.random.default_rng(seed)
    n, k = d.shape
    beta = np.zeros(k)
    m = np.zeros(k)
    v = np.zeros(k)
    t = 0
    best = (np.inf, beta.copy(), 0)
    bad = 0
    ep = 0
    for ep in range(1, epochs + 1):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            _, g = bt_loss(beta, d[idx], y[idx], w[idx], lam)
            t += 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            beta = beta - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        if dv is not None and yv is not None and wv is not None and len(yv):
            vl = log_loss(beta, dv, yv, wv)
            if vl < best[0] - 1e-5:
                best, bad = (vl, beta.copy(), ep), 0
            else:
                bad += 1
                if bad >= patience:
                    break
        else:
            best = (np.nan, beta.copy(), ep)
    beta = best[1]
    return HeadFit(
        beta=beta,
        se=np.full(k, np.nan),
        lam=lam,
        train_loss=log_loss(beta, d, y, w),
        val_loss=None if dv is None or not np.isfinite(best[0]) else float(best[0]),
        epochs=int(best[2]),
    )


LAMBDAS: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def fit_adam_select(
    d: F64,
    y: F64,
    w: F64,
    dv: F64 | None,
    yv: F64 | None,
    wv: F64 | None,
    epochs: int,
    seed: int,
    lams: tuple[float, ...] = LAMBDAS,
    default_lam: float = 1e-3,
) -> HeadFit:
    """Early-stopped Adam for each L2 strength in `lams`; keep the fit with the lowest
    validation log-loss (`path` records every try). Without validation rows: `default_lam`,
    all epochs."""
    if dv is None or yv is None or wv is None or not len(yv):
        return fit_adam(d, y, w, None, None, None, default_lam, epochs, seed)
    fits = [fit_adam(d, y, w, dv, yv, wv, lam, epochs, seed) for lam in lams]
    best = min(fits, key=lambda f: np.inf if f.val_loss is None else f.val_loss)
    path = tuple(
        (f.lam, float("nan") if f.val_loss is None else f.val_loss, f.epochs) for f in fits
    )
    return HeadFit(best.beta, best.se, best.lam, best.train_loss, best.val_loss, best.epochs, path)
