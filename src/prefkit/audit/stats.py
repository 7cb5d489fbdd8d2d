"""Small statistics helpers: a ridge-regularised logistic regression with standard errors,
and the one-coin Dawid–Skene model that turns several votes into a posterior per item."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Logit:
    coef: F64  # intercept first when fitted with one
    se: F64
    intercept: bool

    def predict(self, x: F64) -> F64:
        z = x @ self.coef[1:] + self.coef[0] if self.intercept else x @ self.coef
        return np.asarray(expit(z), dtype=np.float64)


def logit_fit(
    x: F64, y: F64, weight: F64 | None = None, l2: float = 1e-4, intercept: bool = True
) -> Logit:
    """Maximum-likelihood logistic regression (L-BFGS), Wald standard errors from the Hessian."""
    n = x.shape[0]
    xx = np.column_stack([np.ones(n), x]) if intercept else x
    w = np.ones(n) if weight is None else weight
    sw = float(w.sum()) or 1.0
    pen = np.full(xx.shape[1], l2)
    if intercept:
        pen[0] = 0.0

    def fun(beta: F64) -> tuple[float, F64]:
        z = xx @ beta
        ll = w * (y * log_expit(z) + (1 - y) * log_expit(-z))
        p = expit(z)
        g = -(xx.T @ (w * (y - p))) / sw + pen * beta
        return float(-ll.sum() / sw + 0.5 * (pen * beta * beta).sum()), g

    res = minimize(fun, np.zeros(xx.shape[1]), jac=True, method="L-BFGS-B")
    beta = np.asarray(res.x, dtype=np.float64)
    p = expit(xx @ beta)
    h = (xx * (w * p * (1 - p))[:, None]).T @ xx + np.diag(pen * sw)
    try:
        cov = np.linalg.inv(h)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(xx.shape[1], np.nan)
    return Logit(beta, se, intercept)


def oof_predict(
    x: F64, y: F64, groups: I64, folds: int = 5, seed: int = 0, l2: float = 1e-3
) -> F64:
    """Out-of-fold P(y=1) from `folds` logistic models, folds split by group (prompt)."""
    rng = np.random.default_rng(seed)
    ug, inv = np.unique(groups, return_inverse=True)
    fold_of = rng.integers(0, folds, size=ug.size)[inv]
    out = np.full(x.shape[0], float(y.mean()) if y.size else 0.5)
    for k in range(folds):
        test = fold_of == k
        train = ~test
        if not test.any() or train.sum() < 10:
            continue
        m = logit_fit(x[train], y[train], l2=l2)
        out[test] = m.predict(x[test])
    return out


@dataclass(frozen=True)
class Consensus:
    posterior: F64  # items x K
    accuracy: F64  # per annotator
    votes: I64  # votes per annotator used


def one_coin(
    item: I64,
    annotator: I64,
    label: I64,
    n_items: int,
    n_annotators: int,
    k: int,
    prior: F64 | None = None,
    iters: int = 50,
) -> Consensus:
    """One-coin Dawid–Skene: annotator r reports the true label with probability acc_r,
    otherwise one of the other k-1 labels uniformly. `prior` (items x k) is an optional
    per-item prior (e.g. from a feature model); a flat class prior is learned otherwise."""
    lab = label.astype(np.int64)
    votes = np.bincount(annotator, minlength=n_annotators).astype(np.int64)
    counts = np.zeros((n_items, k))
    np.add.at(counts, (item, lab), 1.0)
    post = (counts + 1e-3) / (counts + 1e-3).sum(1, keepdims=True)
    acc = np.full(n_annotators, 0.7)
    logprior = np.log(np.clip(prior, 1e-6, 1.0)) if prior is not None else None
    for _ in range(iters):
        hit = np.bincount(annotator, weights=post[item, lab], minlength=n_annotators)
        acc = np.clip((hit + 1.4) / (votes + 2.0), 1e-3, 1 - 1e-3)  # Beta(1.4, 0.6) pull
        if logprior is None:
            cls = post.sum(0) + 1.0
            lp = np.broadcast_to(np.log(cls / cls.sum()), (n_items, k)).copy()
        else:
            lp = logprior.copy()
        wrong = np.log((1 - acc) / max(k - 1, 1))
        right = np.log(acc)
        base = np.zeros(n_items)
        np.add.at(base, item, wrong[annotator])
        lp += base[:, None]
        np.add.at(lp, (item, lab), (right - wrong)[annotator])
        lp -= lp.max(1, keepdims=True)
        new = np.exp(lp)
        new /= new.sum(1, keepdims=True)
        if np.abs(new - post).max() < 1e-6:
            post = new
            break
        post = new
    return Consensus(post, acc, votes)


MAX_PSEUDO_VOTES = 1e6  # a pooled lapse rate: the estimated shrinkage at its cap


@dataclass(frozen=True)
class LapseModel:
    """Fitted vote-lapse model (see `lapse_model`)."""

    p_flip: F64  # per vote: P(recorded reversed | all votes)
    posterior_a: F64  # per item: P(margin > 0), ties at 0 split evenly
    lapse: F64  # per annotator: P(a decisive judgement is recorded reversed)
    position: F64  # per annotator: log-odds added to the shown-first response
    grid: F64  # margin grid
    prior: F64  # learned prior over the grid (symmetric)
    grade_table: F64  # P(grade | |logit| bin), bins of width `step`
    loglik: float
    iterations: int
    measurement: tuple[float, float] = (0.0, 1.0)  # (b, τ²) of the feature logit
    outlier: float = 0.0  # share of items whose feature logit says nothing (robust mode)
    tie_weight: F64 | None = None  # per annotator: Davidson ν (P(tie) = ν / (2cosh(L/2) + ν))
    margin: F64 | None = None  # per item: posterior mean of the margin
    pseudo_votes: float = 0.0  # the lapse rates' shrinkage (pseudo-votes at the pooled rate)


def lapse_model(
    item: I64,
    annotator: I64,
    grade: I64,
    y: I64,
    first: F64,
    n_items: int,
    n_annotators: int,
    n_grades: int,
    prior_a: F64 | None = None,
    iters: int = 80,
    step: float = 0.5,
    max_margin: float = 6.0,
    lapse_prior: tuple[float, float] = (1.0, 9.0),
    lapse_shrink: float | None = 30.0,
    position_sd: float = 1.0,
    tol: float = 1e-6,
    max_votes: int = 200_000,
    seed: int = 0,
    init: LapseModel | None = None,
    robust: bool = True,
    tie: NDArray[np.bool_] | None = None,
) -> LapseModel:
    """EM for decisive votes y ∈ {0 (a), 1 (b)} under a psychometric model with lapses.

    Each item has a latent margin m (log-odds that a is better, on a grid with a learned
    symmetric prior). Annotator r's judgement has log-odds L = m + γ_r·s, where s = +1/−1
    when a/b was shown first (0 unknown) and γ_r is r's position bias; r judges a with
    probability σ(L), reports a confidence grade g with probability G(g | |L|) (a learned
    table: confident grades come from clear judgements), and then records the reverse of its
    judgement with probability f_r, the lapse rate, independent of the item. So honest
    disagreement happens on close items (σ(L) near ½) while lapses happen everywhere; on
    clear items a reversed vote is a lapse. `prior_a` (per item, e.g. a feature model's
    P(a wins)) enters as a noisy measurement of the margin: its logit z ~ N(b·m, τ²), with b
    and τ² fitted (so a useless feature model is ignored and a sharp one is trusted). With
    `robust` (default) the measurement is a mixture: with a learned probability ε it is an
    outlier, z ~ N(0, var z), that says nothing about the margin — a feature model that is
    confidently wrong on a pair then does not outvote the annotators (a Gaussian alone makes
    the scores overconfident exactly there). Returns P(flipped | all votes) per vote.

    f_r is shrunk towards the pooled rate (empirical Bayes, `lapse_shrink` pseudo-votes; the
    pooled rate has a Beta(`lapse_prior`) prior; `lapse_shrink=None` estimates the
    pseudo-votes from the data each M-step, `lapse_pseudo_votes`: as many as the spread of
    the annotators' rates beyond their binomial noise allows, so equal rates pool fully), γ_r has a N(0, `position_sd`²) prior
    (Newton steps on the expected log-likelihood of the sides). With more than `max_votes`
    votes the parameters are fitted on a random subset of items (`seed`) and every vote is
    then scored with them (one E-step, about `max_votes` votes' worth of items at a time);
    `init` starts from a fitted model's parameters.

    `tie` marks votes that answered "tie" (their `y` is ignored): an annotator says tie with
    probability ν_r / (2·cosh(L/2) + ν_r) (Davidson), so ties tell close pairs from clear
    ones — a pair someone called a tie is close, and its split votes are honest
    disagreement; ν_r is fitted per annotator (0 for one who never ties). Ties are never
    scored as flips."""
    from scipy.sparse import csr_matrix
    from scipy.special import expit as sig
    from scipy.special import logsumexp

    v = int(y.size)
    if init is None and max_votes and v > max_votes:
        rng = np.random.default_rng(seed)
        order = rng.permutation(n_items)
        cum = np.cumsum(np.bincount(item, minlength=n_items)[order])
        chosen = np.zeros(n_items, dtype=bool)
        chosen[order[: int(np.searchsorted(cum, max_votes)) + 1]] = True
        sel = chosen[item]
        new_id = (np.cumsum(chosen) - 1).astype(np.int64)
        sub = lapse_model(
            new_id[item[sel]], annotator[sel], grade[sel], y[sel], first[sel],
            int(chosen.sum()), n_annotators, n_grades,
            None if prior_a is None else prior_a[chosen],
            iters, step, max_margin, lapse_prior, lapse_shrink, position_sd, tol, 0,
            robust=robust, tie=None if tie is None else tie[sel],
        )  # fmt: skip
        # every vote scored with the fitted parameters (one E-step; items are independent
        # given them), `max_votes` votes' worth of items at a time: memory stays bounded
        chunk = np.cumsum(np.bincount(item, minlength=n_items)) // max_votes
        p_flip = np.zeros(v)
        post_a = np.zeros(n_items)
        margin = np.zeros(n_items)
        ll = 0.0
        for part_no in range(int(chunk[-1]) + 1 if n_items else 0):
            its = chunk == part_no
            if not its.any():
                continue
            rows = np.flatnonzero(its[item])
            ids = (np.cumsum(its) - 1).astype(np.int64)
            part = lapse_model(
                ids[item[rows]], annotator[rows], grade[rows], y[rows], first[rows],
                int(its.sum()), n_annotators, n_grades,
                None if prior_a is None else prior_a[its],
                0, step, max_margin, lapse_prior, lapse_shrink, position_sd, tol, 0,
                init=sub, robust=robust, tie=None if tie is None else tie[rows],
            )  # fmt: skip
            p_flip[rows], post_a[its] = part.p_flip, part.posterior_a
            if part.margin is not None:
                margin[its] = part.margin
            ll += part.loglik
        return replace(sub, p_flip=p_flip, posterior_a=post_a, loglik=ll, margin=margin)
    grid = np.arange(-max_margin, max_margin + step / 2, step)
    n_g = grid.size
    n_bins = int(np.ceil((max_margin + 4.0) / step)) + 1
    sgn = np.where(y == 0, 1.0, -1.0)
    first = np.asarray(first, dtype=np.float64)
    # the feature model's logit z is a noisy measurement of the margin: z ~ N(b·m, τ²)
    z = (
        np.zeros(n_items)
        if prior_a is None
        else np.log(np.clip(prior_a, 1e-4, 1 - 1e-4) / (1 - np.clip(prior_a, 1e-4, 1 - 1e-4)))
    )
    zb, tau2 = 0.0, max(float(z.var()), 1e-6)
    s2 = max(float((z * z).mean()), 1e-6)  # the outlier component: z ~ N(0, s2)
    eps = 0.1 if robust else 0.0
    tilt = np.zeros((n_items, n_g))

    def measure(zb: float, tau2: float, eps: float) -> tuple[F64, F64]:
        """log p(z | m) on the grid, and the share of it from the informative component."""
        c1 = -0.5 * (z[:, None] - zb * grid[None, :]) ** 2 / tau2 - 0.5 * np.log(tau2)
        if eps <= 0:
            return c1, np.ones_like(c1)
        c1 = c1 + np.log1p(-eps)
        c2 = (np.log(eps) - 0.5 * z * z / s2 - 0.5 * np.log(s2))[:, None]
        t = np.logaddexp(c1, c2)
        return t, np.exp(c1 - t)

    is_tie = np.zeros(v, dtype=bool) if tie is None else np.asarray(tie, dtype=bool)
    dec_v = ~is_tie
    n_r = np.bincount(annotator[dec_v], minlength=n_annotators).astype(np.float64)
    t_r = np.bincount(annotator[is_tie], minlength=n_annotators).astype(np.float64)
    nu = np.where(t_r > 0, t_r / np.maximum(n_r, 1.0), 0.0)
    # A vote's likelihood depends on the item only through the margin: votes of the same
    # type (annotator, side, display order, grade, tie) share it, so the E- and M-steps run
    # over the distinct types (a few thousand) and the items see them through `cnt_it`
    # (items x types, vote counts); the result is the same as per vote.
    side_code = np.where(first > 0, 2, np.where(first < 0, 0, 1))
    code = (((annotator * 2 + (sgn > 0)) * 3 + side_code) * n_grades + grade) * 2 + is_tie
    _, k_first, key = np.unique(code, return_index=True, return_inverse=True)
    key = key.ravel()
    n_k = k_first.size
    annotator_k, grade_k = annotator[k_first], grade[k_first]
    sgn_k, first_k = sgn[k_first], first[k_first]
    is_tie_k = is_tie[k_first]
    dec = ~is_tie_k
    cnt_it = csr_matrix((np.ones(v), (item, key)), shape=(n_items, n_k))
    cnt_it_t = cnt_it.T.tocsr()
    a0, b0 = lapse_prior
    pi = np.exp(-0.5 * (grid / 3.0) ** 2)
    pi /= pi.sum()
    f = np.full(n_annotators, 0.1)
    gam = np.zeros(n_annotators)
    tab = np.full((n_bins, n_grades), 1.0 / n_grades)
    if init is not None:
        f, gam, tab, pi = init.lapse.copy(), init.position.copy(), init.grade_table, init.prior
        zb, tau2 = init.measurement
        eps = init.outlier
        if init.tie_weight is not None:
            nu = init.tie_weight.copy()
        if prior_a is not None:
            tilt = measure(zb, tau2, eps)[0]
    ll_total = -np.inf
    kappa = lapse_shrink if lapse_shrink is not None else MAX_PSEUDO_VOTES
    if init is not None and lapse_shrink is None:
        kappa = init.pseudo_votes

    def estep(
        f: F64, gam: F64, tab: F64, pi: F64, nu: F64
    ) -> tuple[F64, F64, F64, F64, F64, I64, float, F64]:
        """Posterior over the margin grid per item, and per vote type: h, f, P(recorded
        side), the summed posterior weight of its votes, grade bins, Davidson c."""
        u = sgn_k[:, None] * (grid[None, :] + (gam[annotator_k] * first_k)[:, None])  # s·L
        h = np.asarray(sig(u), dtype=np.float64)  # honest P(the recorded side)
        fv = f[annotator_k][:, None]
        py = np.clip(fv + (1 - 2 * fv) * h, 1e-12, 1.0)
        b = np.minimum(np.rint(np.abs(u) / step).astype(np.int64), n_bins - 1)
        lv = np.log(py) + np.log(tab)[b, grade_k[:, None]]
        c = np.empty(0)
        if is_tie.any():  # Davidson: P(tie) = ν / (c + ν), c = 2·cosh(L/2)
            c = 2.0 * np.cosh(np.clip(u, -60, 60) / 2.0)
            nv = nu[annotator_k][:, None]
            log_cn = np.log(c + nv)
            lv = np.where(
                dec[:, None], lv + np.log(c) - log_cn, np.log(np.maximum(nv, 1e-12)) - log_cn
            )
        lp = np.log(pi)[None, :] + tilt + np.asarray(cnt_it @ lv)
        norm = logsumexp(lp, axis=1)
        post = np.exp(lp - norm[:, None])
        w = np.asarray(cnt_it_t @ post)  # per type: the posterior summed over its votes
        return post, h, fv, py, w, b, float(norm.sum()), c

    prev = -np.inf
    done = 0
    for _ in range(iters):
        post, h, fv, py, w, b, ll_total, c = estep(f, gam, tab, pi, nu)
        if abs(ll_total - prev) < tol * max(v, 1):
            break
        done += 1
        prev = ll_total
        # M-step: measurement model of z, prior, grade table, lapse rates, position biases
        if prior_a is not None:
            resp = post * measure(zb, tau2, eps)[1]  # weight of the informative component
            em, em2, r_i = resp @ grid, resp @ (grid * grid), resp.sum(1)
            zb = float((em * z).sum() / max(float(em2.sum()), 1e-9))
            tau2 = float((r_i * z * z - 2 * zb * z * em + zb * zb * em2).sum())
            tau2 = max(tau2 / max(float(r_i.sum()), 1e-9), 1e-4)
            if robust:
                eps = float(np.clip(1.0 - r_i.mean(), 1e-3, 0.5))
            tilt = measure(zb, tau2, eps)[0]
        pi = post.sum(0) + 1e-3
        pi = 0.5 * (pi + pi[::-1])
        pi /= pi.sum()
        if is_tie.any():
            # ν_r: fixed point of Σ ties / ν = Σ_votes E[1 / (c + ν)], with 2 pseudo-votes
            # at the pooled value
            s_r = np.bincount(
                annotator_k,
                weights=(w / (c + nu[annotator_k][:, None])).sum(1),
                minlength=n_annotators,
            )
            pooled = float(t_r.sum()) / max(float(s_r.sum()), 1e-12)
            nu = (t_r + 2.0 * pooled) / (s_r + 2.0)
            nu[t_r == 0] = 0.0
        w = w * dec[:, None]  # grades, lapses and position come from decisive votes
        cnt = np.bincount(
            (b * n_grades + grade_k[:, None]).ravel(),
            weights=w.ravel(),
            minlength=n_bins * n_grades,
        ).reshape(n_bins, n_grades)
        tab = (cnt + 0.5) / (cnt + 0.5).sum(1, keepdims=True)
        e_flip = (w * fv * (1 - h) / py).sum(1)
        e_r = np.bincount(annotator_k, weights=e_flip, minlength=n_annotators)
        # empirical Bayes: shrink each annotator's lapse rate towards the pooled rate
        f_bar = (float(e_r.sum()) + a0 - 1) / (float(n_r.sum()) + a0 + b0 - 2)
        kappa = (
            lapse_shrink
            if lapse_shrink is not None
            else lapse_pseudo_votes(e_r.astype(np.float64), n_r, f_bar)
        )
        f = np.clip((e_r + kappa * f_bar) / (n_r + kappa), 1e-4, 0.49)
        d1 = (1 - 2 * fv) * h * (1 - h) / py
        d2 = (1 - 2 * fv) * h * (1 - h) * (1 - 2 * h) / py - d1 * d1
        g1 = np.bincount(
            annotator_k, weights=(w * d1).sum(1) * sgn_k * first_k, minlength=n_annotators
        )
        g2 = np.bincount(
            annotator_k, weights=(w * d2).sum(1) * first_k * first_k, minlength=n_annotators
        )
        prec = 1.0 / position_sd**2
        gam = np.clip(gam - (g1 - prec * gam) / np.minimum(g2 - prec, -1e-9), -4.0, 4.0)
    post, h, fv, py, w, b, ll_total, c = estep(f, gam, tab, pi, nu)
    flip_k = fv * (1 - h) / py  # per type and margin: P(reversed | margin)
    p_flip = np.where(dec_v, (post[item] * flip_k[key]).sum(1), 0.0)
    post_a = (post * (grid > 0)).sum(1) + 0.5 * (post * (grid == 0)).sum(1)
    return LapseModel(
        np.clip(p_flip, 0.0, 1.0), post_a, f, gam, grid, pi, tab, ll_total, done, (zb, tau2), eps,
        nu if is_tie.any() else None, post @ grid, float(kappa),
    )  # fmt: skip


def lapse_pseudo_votes(e_r: F64, n_r: F64, f_bar: float, min_votes: float = 5.0) -> float:
    """Pseudo-votes of the Beta prior that shrinks each annotator's lapse rate towards the
    pooled rate `f_bar`, by the method of moments (beta-binomial): the rates' spread across
    annotators (with ≥ `min_votes` decisive votes) minus what their binomial noise alone
    gives is the between-annotator variance s²; κ = f̄(1 − f̄)/s² − 1. No spread beyond
    the noise: one pooled rate (κ = MAX_PSEUDO_VOTES)."""
    ok = n_r >= min_votes
    if int(ok.sum()) < 2 or not 0.0 < f_bar < 1.0:
        return MAX_PSEUDO_VOTES
    rate = e_r[ok] / n_r[ok]
    noise = float(np.mean(f_bar * (1 - f_bar) / n_r[ok]))
    between = float(np.mean((rate - f_bar) ** 2)) - noise
    if between <= f_bar * (1 - f_bar) / (MAX_PSEUDO_VOTES + 1):
        return MAX_PSEUDO_VOTES
    return float(max(f_bar * (1 - f_bar) / between - 1.0, 1.0))


def sparse_logit_coef(
    x: Any, y: F64, l2: float = 1e-2, maxiter: int = 100, init: F64 | None = None
) -> F64:
    """Ridge logistic regression (intercept unpenalised) on a scipy sparse or dense design,
    L-BFGS; `y` may be soft (probabilities); `init` warm-starts the coefficients. Returns
    the coefficients, intercept first."""
    n = x.shape[0]

    def fun(beta: F64) -> tuple[float, F64]:
        z = np.asarray(x @ beta[1:]).ravel() + beta[0]
        ll = y * log_expit(z) + (1 - y) * log_expit(-z)
        r = (np.asarray(expit(z)) - y) / n
        g = np.concatenate([[r.sum()], np.asarray(x.T @ r).ravel() + l2 * beta[1:]])
        return float(-ll.mean() + 0.5 * l2 * float(beta[1:] @ beta[1:])), g

    start = np.zeros(x.shape[1] + 1) if init is None else init
    res = minimize(fun, start, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return np.asarray(res.x, dtype=np.float64)


def logit_predict(beta: F64, x: Any) -> F64:
    """P(y = 1) under coefficients `beta` (intercept first) for a sparse or dense design."""
    return np.asarray(expit(np.asarray(x @ beta[1:]).ravel() + beta[0]), dtype=np.float64)
