"""How annotators (or groups) differ: per-group feature weights shrunk towards the population,
a PCA basis of those weights, and clusters.

Hierarchical model (normal random effects, empirical Bayes): group g's coefficients
beta_g ~ N(mu, diag(tau^2)). Each iteration fits every group's MAP estimate under that prior
(`model.fit` with precision 1/tau^2 and centre mu; the group's own tie parameter with a weak
prior towards the population's) and updates mu and tau^2 from the posterior means and
variances (EM with a Laplace E-step), until mu and tau move less than 1e-4. Groups with little
data are pulled towards mu; groups that differ with enough votes keep their difference.

Basis: PCA (SVD) of the per-group weights, each feature divided by its between-group standard
deviation tau (features on which groups do not differ shrink to 0 instead of adding noise) —
the axes, their explained variance and every group's coordinates.

Clusters: a mixture of K Davidson/BT models over groups (latent classes: every group belongs
to one class, a class has its own coefficients and tie parameter), fitted by EM on the votes
themselves (the model behind MaxMin-RLHF's user clustering; Chakraborty et al. 2024), from the
best of two k-means starts on the basis coordinates. K = 1..6 is chosen by AIC plus twice
the classification entropy of the groups' class probabilities (the entropy term of
Biernacki, Celeux & Govaert's ICL, with AIC's penalty: classes the data cannot tell apart are
not reported; plain AIC split 400 identical simulated annotators into two classes). The
search stops once the criterion has risen twice in a row and runs on a stratified sample of
at most 20,000 votes; every group is then assigned from all its votes. On
simulated pluralistic data the mixture recovers the groups where k-means on the estimated
weights does not (benchmarks/RESULTS.md), because it weighs every group by its own evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from prefkit.explain.model import GLM, fit

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TAU_PREC = 1e-4  # a tiny prior on a group's tie parameter: finite for groups without ties
MAX_CLUSTERS = 6
MIXTURE_VOTES = 20_000  # votes the search over K uses at most (a stratified sample)


@dataclass(frozen=True)
class Hierarchical:
    groups: list[str]
    votes: I64
    beta: F64  # (G, p) posterior means
    se: F64  # (G, p) posterior standard deviations
    mu: F64  # (p,) population mean
    tau: F64  # (p,) between-group standard deviation
    iterations: int


def hierarchical(
    x: F64,
    y: F64,
    gid: I64,
    groups: list[str],
    model: str,
    pooled: GLM,
    max_iter: int = 30,
    tol: float = 1e-3,
) -> Hierarchical:
    """Empirical-Bayes per-group coefficients (see module doc). `gid` maps rows to groups."""
    p = x.shape[1]
    rows = [np.flatnonzero(gid == g) for g in range(len(groups))]
    mu = pooled.beta.copy()
    tau2 = np.full(p, 0.25)
    beta = np.tile(mu, (len(groups), 1))
    var = np.zeros_like(beta)
    tie_center = pooled.tau
    it = 0
    while it < max_iter:
        it += 1
        for g, r in enumerate(rows):
            res = fit(
                x[r], y[r], model, prec=1.0 / tau2, center=mu, beta0=beta[g],
                tau0=tie_center if model == "davidson" else None, tau_prec=1.0,
                tau_center=tie_center,
            )  # fmt: skip
            beta[g] = res.beta
            cov = np.linalg.inv(res.hess)
            var[g] = np.maximum(np.diag(cov)[:p], 0.0)
        new_mu = beta.mean(axis=0)
        new_tau2 = np.maximum(((beta - new_mu) ** 2 + var).mean(axis=0), 1e-6)
        done = (
            float(np.abs(new_mu - mu).max()) < tol
            and float(np.abs(np.sqrt(new_tau2) - np.sqrt(tau2)).max()) < tol
        )
        mu, tau2 = new_mu, new_tau2
        if done:
            break
    votes = np.array([float(y[r].sum()) for r in rows]).astype(np.int64)
    return Hierarchical(groups, votes, beta, np.sqrt(var), mu, np.sqrt(tau2), it)


@dataclass(frozen=True)
class Basis:
    explained: F64  # share of variance per component
    axes: F64  # (k, p) loadings (unit vectors, in tau-scaled units)
    coords: F64  # (G, k) coordinates of every group


def basis(weights: F64) -> Basis:
    """PCA of the (tau-scaled, see module doc) per-group weights."""
    centred = weights - weights.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    total = float(var.sum())
    explained = var / total if total > 0 else np.zeros_like(var)
    return Basis(explained, vt, u * s)


@dataclass(frozen=True)
class Mixture:
    k: int
    labels: I64  # (G,) most probable class of every group
    resp: F64  # (G, k) posterior class probabilities
    beta: F64  # (k, p) class coefficients
    tau: F64  # (k,) class tie parameters
    loglik: float
    aic: dict[int, float]  # criterion of every K tried: AIC + 2 x classification entropy
    notes: list[str] = field(default_factory=list)


def _em(
    x: F64, y: F64, gid: I64, n_groups: int, model: str, pooled: GLM, init: I64, k: int,
    max_iter: int = 100, tol: float = 1e-6,
) -> tuple[F64, float, list[GLM]]:  # fmt: skip
    from prefkit.rank.bt import derivs

    r = np.zeros((n_groups, k))
    r[np.arange(n_groups), init] = 1.0
    fits = [pooled] * k
    ll_old = -np.inf
    ll = -np.inf
    for _ in range(max_iter):
        new = []
        for c in range(k):
            w = r[gid, c]
            rows = w > 1e-8  # rows of groups with no weight in this class cost nothing
            new.append(
                fit(x[rows], y[rows] * w[rows, None], model, beta0=fits[c].beta,
                    tau0=fits[c].tau if model == "davidson" else None, max_iter=3)
            )  # fmt: skip
        fits = new
        ll_g = np.stack(
            [np.bincount(gid, -derivs(model, x @ f.beta, f.tau, y).f, n_groups) for f in fits],  # type: ignore[arg-type]
            axis=1,
        )
        z = ll_g + np.log(r.mean(axis=0) + 1e-12)
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        r = e / e.sum(axis=1, keepdims=True)
        ll = float((m[:, 0] + np.log(e.sum(axis=1))).sum())
        if ll - ll_old < tol * max(1.0, abs(ll)):
            break
        ll_old = ll
    return r, ll, fits


def _posterior(
    x: F64, y: F64, gid: I64, n_groups: int, model: str, fits: list[GLM], pi: F64
) -> F64:
    """Class probabilities of every group from all its votes (one E-step)."""
    from prefkit.rank.bt import derivs

    ll_g = np.stack(
        [np.bincount(gid, -derivs(model, x @ f.beta, f.tau, y).f, n_groups) for f in fits],  # type: ignore[arg-type]
        axis=1,
    )
    z = ll_g + np.log(pi + 1e-12)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def stratified(
    gid: I64, n_groups: int, max_votes: int, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """At most about `max_votes` rows, every group keeping its share (at least 1 vote)."""
    n = gid.size
    if n <= max_votes:
        return np.ones(n, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    frac = max_votes / n
    for g in range(n_groups):
        rows = np.flatnonzero(gid == g)
        m = max(1, int(np.ceil(rows.size * frac)))
        keep[rng.choice(rows, size=min(m, rows.size), replace=False)] = True
    return keep


def mixture(
    x: F64,
    y: F64,
    gid: I64,
    n_groups: int,
    model: str,
    pooled: GLM,
    coords: F64,
    k_max: int = MAX_CLUSTERS,
    starts: int = 2,
    seed: int = 0,
    max_votes: int = MIXTURE_VOTES,
) -> Mixture:
    """Latent-class mixture of vote models over groups, K by AIC (see module doc). K is
    searched on a stratified sample of at most `max_votes` votes (every group keeps its
    share) and stops after AIC rises twice in a row; the chosen classes then assign every
    group from all its votes."""
    notes: list[str] = []
    p = x.shape[1]
    sub = stratified(gid, n_groups, max_votes, np.random.default_rng([seed, 25]))
    if not sub.all():
        notes.append(
            f"the number of clusters was chosen on {int(sub.sum())} of {sub.size} votes "
            "(a stratified sample); every group is then assigned from all its votes"
        )
    xs, ys, gs = x[sub], y[sub], gid[sub]
    ones = np.zeros(n_groups, dtype=np.int64)
    r1, ll1, f1 = _em(xs, ys, gs, n_groups, model, pooled, ones, 1)
    per_class = p + int(model == "davidson")
    aic = {1: -2 * ll1 + 2 * per_class}  # AIC + 2 x classification entropy (see module doc)
    best = (1, r1, ll1, f1)
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        notes.append(
            "clusters need scikit-learn: install the training extra: pip install 'prefkit[train]'"
        )
        k_max = 1
    rises = 0
    for k in range(2, min(k_max, n_groups - 1) + 1):
        top: tuple[F64, float, list[GLM]] | None = None
        for s in range(starts):
            init = np.asarray(
                KMeans(n_clusters=k, n_init=10, random_state=seed + s).fit(coords).labels_,
                dtype=np.int64,
            )
            res = _em(xs, ys, gs, n_groups, model, pooled, init, k)
            if top is None or res[1] > top[1]:
                top = res
        assert top is not None
        resp = top[0]
        entropy = float(-(resp * np.log(np.clip(resp, 1e-300, 1.0))).sum())
        aic[k] = -2 * top[1] + 2 * (k * per_class + k - 1) + 2 * entropy
        if aic[k] < aic[best[0]]:
            best = (k, top[0], top[1], top[2])
        rises = rises + 1 if aic[k] > aic[k - 1] else 0
        if rises == 2:
            break
    k, r, ll, fits = best
    if not sub.all():
        r = _posterior(x, y, gid, n_groups, model, fits, r.mean(axis=0))
    labels = np.asarray(r.argmax(axis=1), dtype=np.int64)
    # classes numbered by size (largest first)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return Mixture(
        k, remap[labels], r[:, order], np.stack([fits[c].beta for c in order]),
        np.array([fits[c].tau for c in order]), ll, aic, notes,
    )  # fmt: skip


def heterogeneity(
    x: F64,
    y: F64,
    gid: I64,
    groups: list[str],
    model: str,
    pooled: GLM,
    min_votes: int,
) -> dict[str, Any]:
    """Do the groups differ? A likelihood-ratio test of one coefficient vector per group
    against the pooled one (tie parameter per group in both), over the groups with at least
    `min_votes` votes, and per feature Cochran's Q of the group estimates (Benjamini–Hochberg
    adjusted)."""
    p = x.shape[1]
    keep = [g for g in range(len(groups)) if float(y[gid == g].sum()) >= min_votes]
    if len(keep) < 2:
        return {
            "tested": False,
            "reason": f"fewer than two groups with >= {min_votes} votes",
            "groups": [groups[g] for g in keep],
        }
    ll_sep = 0.0
    ll_pool = 0.0
    est = np.zeros((len(keep), p))
    var = np.zeros((len(keep), p))
    for i, g in enumerate(keep):
        r = gid == g
        sep = fit(x[r], y[r], model, tau_prec=TAU_PREC, tau_center=pooled.tau)
        ll_sep -= sep.nll + 0.5 * TAU_PREC * (sep.tau - pooled.tau) ** 2
        est[i] = sep.beta
        var[i] = np.maximum(np.diag(np.linalg.inv(sep.hess))[:p], 1e-12)
    ll_pool = _pooled_ll(x, y, gid, keep, model, pooled)
    lr = max(0.0, 2.0 * (ll_sep - ll_pool))
    df = (len(keep) - 1) * p
    w = 1.0 / var
    mean = (w * est).sum(axis=0) / w.sum(axis=0)
    q = (w * (est - mean) ** 2).sum(axis=0)
    pq = stats.chi2.sf(q, len(keep) - 1)
    return {
        "tested": True,
        "groups": [groups[g] for g in keep],
        "lr_statistic": float(lr),
        "df": int(df),
        "p_value": float(stats.chi2.sf(lr, df)),
        "per_feature_q": q.tolist(),
        "per_feature_p": pq.tolist(),
        "per_feature_p_bh": bh(pq).tolist(),
    }


def _pooled_ll(
    x: F64, y: F64, gid: I64, keep: list[int], model: str, pooled: GLM, tol: float = 1e-9
) -> float:
    """Log-likelihood of one common coefficient vector over the kept groups, each group with
    its own tie parameter (Newton over beta and the groups' tie parameters jointly)."""
    rows = np.isin(gid, np.array(keep))
    xs, ys = x[rows], y[rows]
    if model != "davidson":
        return -fit(xs, ys, model, l2=0.0, beta0=pooled.beta).nll
    from prefkit.rank.bt import derivs

    k = len(keep)
    kidx = np.searchsorted(np.array(keep), gid[rows])
    p = xs.shape[1]
    theta = np.concatenate([pooled.beta, np.full(k, pooled.tau)])

    def pen(th: F64) -> float:
        return 0.5 * TAU_PREC * float(((th[p:] - pooled.tau) ** 2).sum())

    def parts(th: F64) -> tuple[float, F64, F64]:
        d = derivs("davidson", xs @ th[:p], th[p:][kidx], ys)
        g = np.concatenate(
            [xs.T @ d.fe, np.bincount(kidx, d.ft, k) + TAU_PREC * (th[p:] - pooled.tau)]
        )
        h = np.zeros((p + k, p + k))
        h[:p, :p] = (xs * d.fee[:, None]).T @ xs
        for j in range(k):
            r = kidx == j
            c = xs[r].T @ d.fet[r]
            h[:p, p + j] = c
            h[p + j, :p] = c
        h[p + np.arange(k), p + np.arange(k)] = np.bincount(kidx, d.ftt, k) + TAU_PREC
        return float(d.f.sum()) + pen(th), g, h

    f, g, h = parts(theta)
    for _ in range(100):
        step = np.linalg.solve(h + 1e-10 * np.eye(p + k), g)
        s = 1.0
        for _ in range(50):
            cand = theta - s * step
            fc = float(derivs("davidson", xs @ cand[:p], cand[p:][kidx], ys).f.sum()) + pen(cand)
            if np.isfinite(fc) and fc <= f + 1e-12 * abs(f):
                break
            s *= 0.5
        theta = cand
        f, g, h = parts(theta)
        if float(np.abs(s * step).max()) < tol:
            break
    return -f


def bh(p: F64) -> F64:
    """Benjamini–Hochberg adjusted p-values."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out
