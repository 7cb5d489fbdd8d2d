"""Latent groups of annotators: a finite mixture of Bradley–Terry (or Davidson) models over
annotators, fitted by EM (`prefkit aggregate --method bt-mixture --groups K|auto`).

Every annotator u belongs to one of K groups with prior probability pi_g; given its group, its
votes are independent with the group's model: the vote on a unit (a pair of items) has linear
predictor eta = x · beta_g, where x is the unit's design row:

- **votes alone** (items = models): x = e_i − e_j, so beta_g are the group's item strengths
  (Bradley–Terry on the models);
- **with text** (item = response): a response's strength in group g is its model's strength
  plus a linear function of its features (the torch-free reward features: length, formatting,
  refusal and hedging markers, ...; and `MIXTURE_STANCE` of `prefkit.rank.stance`: epistemic
  hedges, specific and generic sentences, sentence specificity), so x = [e_model(a) − e_model(b), phi(a) − phi(b)] with
  the feature differences standardised; a response's strength thereby carries over to every
  pair it resembles, which is what lets groups be told apart when every pair is new;
- **with prompt context** (`--context N`, opt-in): the effect of chosen features may depend on
  the prompt: x gains the columns phi_f(a) − phi_f(b) times each of the N leading principal
  components of the prompts' MiniLM embeddings (`prompt_context`), so a group can like a
  refusal on one kind of prompt and dislike it on another (L2 prior `CONTEXT_PRIOR`).

The E-step computes each annotator's posterior over groups from all of its votes jointly; the
M-step refits every group's model on the posterior-weighted votes (Newton steps with an L2
prior: `ITEM_PRIOR` on item strengths, `FEATURE_PRIOR` on feature coefficients; opt-in,
`--feature-prior evidence`: the feature prior's precision chosen per fit by empirical Bayes,
MacKay's evidence update). Several random starts; the best penalised log-likelihood wins. K is chosen by held-out likelihood:
each annotator's votes are split into folds, the model is fitted on the other folds, and a
held-out fold is scored by the predictive probability of the annotator's held-out votes
*jointly*, mixing the groups by the posterior from its training votes. The smallest K within
one standard error (over annotators, paired) of the best held-out log-likelihood is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from numpy.typing import NDArray

from prefkit.rank.bt import derivs, tie_counts
from prefkit.rank.data import RankInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

MixtureModel = Literal["bt", "davidson"]
ITEM_PRIOR = 0.1
FEATURE_PRIOR = 1.0
TIE_PRIOR = 0.01  # on log nu around the pooled value (a group without ties stays finite)
CONTEXT_PRIOR = 1.0  # on the feature x prompt-context interactions (standardised like features)
CONTEXT_FEATURES = ("refusal",)  # default features whose effect may depend on the prompt
# stance columns (`prefkit.rank.stance`) added to the response features: chosen on the
# simulator's development worlds (benchmarks/RESULTS.md, "Stance features")
MIXTURE_STANCE = (
    "epistemic",
    "specific_sentences",
    "generic_sentences",
    "specificity_sum",
    "specificity_mean",
)
# empirical-Bayes feature prior (`fit_mixture(prior="evidence")`): bounds, rounds, tolerance
PRIOR_RANGE = (0.01, 1e4)
PRIOR_ROUNDS = 20
PRIOR_TOL = 0.01  # stop when the precision moves by less than 1% (log scale)
CONTEXT_AUTO = (0, 4, 8)  # components `--context auto` chooses among (held-out likelihood)
MAX_AUTO_GROUPS = 6
FOLDS = 5
DENSE_MAX_CELLS = 20_000_000  # the design is a dense array up to this many cells


@dataclass(frozen=True)
class MixtureData:
    """Votes for the mixture: design rows per unit, and per vote its unit, annotator and
    outcome counts (a, b, tie relative to the unit's orientation; weighted)."""

    x: sp.csr_matrix | F64  # units x P (dense when mostly non-zero)
    unit: I64
    annotator: I64
    y3: F64  # (votes, 3)
    penalty: F64  # (P,) L2 precision per coefficient
    annotators: tuple[str, ...]
    names: tuple[str, ...]  # coefficient names
    model: MixtureModel = "bt"
    ties: str = "half"

    @property
    def n_votes(self) -> int:
        return int(self.unit.size)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    def subset(self, mask: NDArray[np.bool_]) -> MixtureData:
        return replace(self, unit=self.unit[mask], annotator=self.annotator[mask], y3=self.y3[mask])


@dataclass(frozen=True)
class MixtureFit:
    k: int
    weights: F64  # (K,) mixing proportions
    coef: F64  # (K, P)
    tau: F64  # (K,) log nu (davidson); zeros for bt
    posterior: F64  # (annotators, K)
    loglik: float  # observed-data log-likelihood (no prior)
    objective: float  # penalised log-likelihood that EM maximises
    iterations: int
    converged: bool
    feature_prior: float | None = None  # the evidence-chosen feature prior (None: as in the data)


def _policy_y(d: MixtureData) -> F64:
    return tie_counts(d.y3, "bt" if d.model == "bt" else "davidson", d.ties)  # type: ignore[arg-type]


_ONE_HOT = np.eye(3)


def cells(d: MixtureData) -> sp.csr_matrix:
    """Vote counts per annotator and (unit, outcome) cell: (annotators, units * 3)."""
    n_units = d.x.shape[0]
    col = np.repeat(d.unit * 3, 3) + np.tile(np.arange(3), d.n_votes)
    row = np.repeat(d.annotator, 3)
    m = sp.csr_matrix(
        (d.y3.ravel(), (row, col)), shape=(d.n_annotators, 3 * n_units), dtype=np.float64
    )
    m.eliminate_zeros()
    return m


def cell_nll(d: MixtureData, coef: F64, tau: F64) -> F64:
    """Negative log-likelihood of one vote of each outcome on each unit under each group
    (units * 3, K), after the tie policy."""
    eta = np.asarray(d.x @ coef.T)  # (units, K)
    model = "bt" if d.model == "bt" else "davidson"
    y = tie_counts(_ONE_HOT, model, d.ties)  # type: ignore[arg-type]
    f = derivs(d.model, eta[:, None, :], tau[None, None, :], y[None, :, None, :]).f
    return np.asarray(f, dtype=np.float64).reshape(-1, coef.shape[0])


def _estep(c: sp.csr_matrix, nll: F64, weights: F64) -> tuple[F64, float]:
    ll = -np.asarray(c @ nll) + np.log(np.maximum(weights, 1e-300))[None, :]
    m = ll.max(axis=1, keepdims=True)
    p = np.exp(ll - m)
    tot = p.sum(axis=1, keepdims=True)
    return p / tot, float((m[:, 0] + np.log(tot[:, 0])).sum())


def _eta(x: sp.csr_matrix | F64, coef: F64) -> F64:
    """Linear predictors (K, units)."""
    return np.asarray(x @ coef.T, dtype=np.float64).T


def _objectives(d: MixtureData, y: F64, coef: F64, tau: F64, tau0: float) -> F64:
    """Every group's penalised negative log-likelihood on its unit counts y (K, units, 3)."""
    f = derivs(d.model, _eta(d.x, coef), tau[:, None], y).f.sum(axis=1)
    pen = 0.5 * (d.penalty[None, :] * coef * coef).sum(axis=1)
    if d.model == "davidson":
        pen = pen + 0.5 * TIE_PRIOR * (tau - tau0) ** 2
    return np.asarray(f + pen, dtype=np.float64)


def _mstep(
    d: MixtureData, y: F64, coef: F64, tau: F64, tau0: float, steps: int = 2
) -> tuple[F64, F64]:
    """Damped Newton steps on every group's penalised negative log-likelihood at once (the
    groups are independent given the posteriors): monotone, so EM's objective never
    decreases."""
    tie = d.model == "davidson"
    k, p = coef.shape
    m = p + int(tie)
    f0 = _objectives(d, y, coef, tau, tau0)
    for _ in range(steps):
        dv = derivs(d.model, _eta(d.x, coef), tau[:, None], y)
        g = np.zeros((k, m))
        h = np.zeros((k, m, m))
        g[:, :p] = _rmat(d.x, dv.fe) + d.penalty[None, :] * coef
        h[:, :p, :p] = np.stack([_gram(d.x, dv.fee[q]) for q in range(k)])
        h[:, np.arange(p), np.arange(p)] += d.penalty[None, :]
        if tie:
            ht = _rmat(d.x, dv.fet)
            h[:, :p, p] = ht
            h[:, p, :p] = ht
            h[:, p, p] = dv.ftt.sum(axis=1) + TIE_PRIOR
            g[:, p] = dv.ft.sum(axis=1) + TIE_PRIOR * (tau - tau0)
        try:
            step = np.linalg.solve(h, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = g / np.maximum(np.diagonal(h, axis1=1, axis2=2), 1e-9)
        s = np.ones(k)
        nc, nt = coef - step[:, :p], (tau - step[:, p]) if tie else tau
        f1 = _objectives(d, y, nc, nt, tau0)
        for _ in range(30):
            bad = ~(np.isfinite(f1) & (f1 <= f0 + 1e-12 * np.abs(f0)))
            if not bad.any():
                break
            s[bad] *= 0.5
            nc = coef - s[:, None] * step[:, :p]
            nt = (tau - s * step[:, p]) if tie else tau
            f1 = _objectives(d, y, nc, nt, tau0)
        ok = np.isfinite(f1) & (f1 <= f0 + 1e-12 * np.abs(f0))
        coef = np.where(ok[:, None], nc, coef)
        tau = np.where(ok, nt, tau) if tie else tau
        f0 = np.where(ok, f1, f0)
        if float(np.abs(s[:, None] * step).max()) < 1e-9:
            break
    return coef, tau


def _rmat(x: sp.csr_matrix | F64, v: F64) -> F64:
    """v @ x for v (K, units): (K, P)."""
    return np.asarray((x.T @ v.T).T, dtype=np.float64)


def _gram(x: sp.csr_matrix | F64, w: F64) -> F64:
    """x^T diag(w) x as a dense array."""
    if sp.issparse(x):
        return np.asarray((x.T @ sp.diags(w) @ x).todense())
    return np.asarray((x * w[:, None]).T @ x)


def _unit_counts(d: MixtureData, ct: sp.csr_matrix, r: F64) -> F64:
    """Posterior-weighted outcome counts per group and unit (K, units, 3), tie policy applied;
    `ct` is the transposed cell matrix, `r` the posteriors (annotators, K)."""
    y3 = np.asarray(ct @ r).T.reshape(r.shape[1], -1, 3)
    model = "bt" if d.model == "bt" else "davidson"
    return np.stack([tie_counts(q, model, d.ties) for q in y3])  # type: ignore[arg-type]


def _pooled_tau(d: MixtureData) -> float:
    y = d.y3.sum(axis=0)
    pt = float(np.clip(y[2] / max(y.sum(), 1e-12), 1e-3, 0.999))
    return float(np.log(2.0 * pt / (1.0 - pt)))


def _run_em(
    d: MixtureData, resp: F64, max_iter: int, tol: float, coef: F64 | None = None
) -> MixtureFit:
    k = resp.shape[1]
    c = cells(d)
    ct = c.T.tocsr()
    tau0 = _pooled_tau(d) if d.model == "davidson" else 0.0
    coef = np.zeros((k, d.x.shape[1])) if coef is None else coef.copy()
    tau = np.full(k, tau0)
    prev = -np.inf
    obj = -np.inf
    ll = -np.inf
    iterations = 0
    converged = False
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        weights = np.maximum(resp.mean(axis=0), 1e-12)
        weights /= weights.sum()
        coef, tau = _mstep(d, _unit_counts(d, ct, resp), coef, tau, tau0)
        resp, ll = _estep(c, cell_nll(d, coef, tau), weights)
        pen = 0.5 * float((d.penalty[None, :] * coef * coef).sum())
        if d.model == "davidson":
            pen += 0.5 * TIE_PRIOR * float(((tau - tau0) ** 2).sum())
        obj = ll - pen
        if obj - prev < tol * max(1.0, abs(obj)):
            converged = True
            break
        prev = obj
    weights = resp.mean(axis=0)
    return MixtureFit(k, weights, coef, tau, resp, ll, obj, iterations, converged)


def feature_columns(d: MixtureData) -> I64:
    """Columns of the response-feature coefficients (not items, not prompt-context terms)."""
    return np.array(
        [q for q, n in enumerate(d.names) if n.startswith("feature:") and "*ctx" not in n],
        dtype=np.int64,
    )


def with_feature_prior(d: MixtureData, prior: float) -> MixtureData:
    pen = d.penalty.copy()
    pen[feature_columns(d)] = prior
    return replace(d, penalty=pen)


def evidence_prior(d: MixtureData, fit: MixtureFit, cols: I64) -> float:
    """MacKay's (1992) evidence update of the feature prior precision: lambda = gamma / sum of
    the squared feature coefficients over groups, gamma = sum over groups and feature columns of
    1 − lambda (H_g^-1)_ff (the well-determined parameters), H_g each group's penalised Hessian
    at the fit."""
    lam = float(d.penalty[cols[0]])
    gamma = 0.0
    for h in _hessians(d, fit):
        gamma += float((1.0 - lam * np.diag(np.linalg.inv(h))[cols]).sum())
    ss = float((fit.coef[:, cols] ** 2).sum())
    return float(np.clip(gamma / max(ss, 1e-12), PRIOR_RANGE[0], PRIOR_RANGE[1]))


def _hessians(d: MixtureData, fit: MixtureFit) -> list[F64]:
    y = _unit_counts(d, cells(d).T.tocsr(), fit.posterior)
    dv = derivs(d.model, _eta(d.x, fit.coef), fit.tau[:, None], y)
    return [_gram(d.x, dv.fee[g]) + np.diag(d.penalty) for g in range(fit.k)]


def _best_of_starts(d: MixtureData, k: int, rng: np.random.Generator, n_init: int,
                    max_iter: int, tol: float) -> MixtureFit:  # fmt: skip
    best: MixtureFit | None = None
    for _ in range(1 if k == 1 else n_init):
        resp = np.ones((d.n_annotators, 1)) if k == 1 else rng.dirichlet(np.ones(k), d.n_annotators)
        f = _run_em(d, resp, max_iter, tol)
        if best is None or f.objective > best.objective:
            best = f
    assert best is not None
    return best


def fit_mixture(
    d: MixtureData,
    k: int,
    rng: np.random.Generator,
    n_init: int = 8,
    max_iter: int = 300,
    tol: float = 1e-8,
    prior: Literal["fixed", "evidence"] = "fixed",
) -> MixtureFit:
    """EM from `n_init` random starts (Dirichlet(1) memberships); the best penalised
    log-likelihood wins. With `prior="evidence"` and response-feature columns in the design,
    the feature prior precision is then chosen by empirical Bayes: MacKay's evidence update
    (`evidence_prior`) iterated with EM from that fit's memberships until it settles, and EM
    is rerun from `n_init` fresh random starts at the chosen precision (best penalised
    likelihood again); `feature_prior` records it. Groups are returned largest first."""
    if k < 1:
        raise RankInputError("the number of groups must be >= 1")
    if k > d.n_annotators:
        raise RankInputError(f"{k} groups but only {d.n_annotators} annotator(s) with usable votes")
    if d.n_votes == 0:
        raise RankInputError("no usable vote for the mixture")
    best = _best_of_starts(d, k, rng, n_init, max_iter, tol)
    cols = feature_columns(d)
    if prior == "evidence" and cols.size:
        lam = float(d.penalty[cols[0]])
        fit = best
        for _ in range(PRIOR_ROUNDS):
            new = evidence_prior(with_feature_prior(d, lam), fit, cols)
            done = abs(np.log(new / lam)) < PRIOR_TOL
            lam = new
            fit = _run_em(with_feature_prior(d, lam), fit.posterior, max_iter, tol)
            if done:
                break
        best = _best_of_starts(with_feature_prior(d, lam), k, rng, n_init, max_iter, tol)
        best = replace(best, feature_prior=lam)
    order = np.argsort(-best.weights, kind="stable")
    return replace(
        best,
        weights=best.weights[order],
        coef=best.coef[order],
        tau=best.tau[order],
        posterior=best.posterior[:, order],
    )


def folds_of(d: MixtureData, folds: int, rng: np.random.Generator) -> I64:
    """Fold of every vote: each annotator's votes shuffled and dealt round-robin."""
    out = np.empty(d.n_votes, dtype=np.int64)
    order = np.lexsort((rng.random(d.n_votes), d.annotator))
    a = d.annotator[order]
    start = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
    pos = np.arange(d.n_votes) - np.repeat(start, np.diff(np.r_[start, d.n_votes]))
    off = rng.integers(0, folds, size=d.n_annotators)[a]
    out[order] = (pos + off) % folds
    return out


def heldout_loglik(d: MixtureData, fold: I64, k: int, rng: np.random.Generator,
                   n_init: int, step: Callable[[int], None] | None = None,
                   prior: Literal["fixed", "evidence"] = "fixed") -> F64:  # fmt: skip
    """Per annotator: the held-out log-likelihood of its votes summed over folds (each fold's
    votes scored jointly under the mixture fitted on the other folds); `step(1)` after each
    fold."""
    out = np.zeros(d.n_annotators)
    for f in np.unique(fold).tolist():
        train = fold != f
        fit = fit_mixture(d.subset(train), k, rng, n_init=n_init, prior=prior)
        ll = -np.asarray(cells(d.subset(~train)) @ cell_nll(d, fit.coef, fit.tau))
        # annotators without training votes fall back to the mixing weights
        has = np.bincount(d.annotator[train], minlength=d.n_annotators) > 0
        post = np.where(has[:, None], fit.posterior, fit.weights[None, :])
        z = ll + np.log(np.maximum(post, 1e-300))
        m = z.max(axis=1, keepdims=True)
        out += m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        if step is not None:
            step(1)
    return out


def select_groups(
    d: MixtureData,
    ks: Sequence[int],
    rng: np.random.Generator,
    folds: int = FOLDS,
    n_init: int = 4,
    progress: Callable[[int], None] | None = None,
    prior: Literal["fixed", "evidence"] = "fixed",
) -> tuple[int, list[dict[str, Any]]]:
    """Choose K by held-out likelihood (module docstring): returns (K, one record per K with
    `heldout_loglik` (per vote), `difference` from the best K and its standard error
    (paired over annotators, total log-likelihood), `chosen`). `progress(1)` after each
    (K, fold) fit: len(ks) × folds steps."""
    fold = folds_of(d, folds, rng)
    per: dict[int, F64] = {}
    for k in ks:
        per[k] = heldout_loglik(d, fold, k, rng, n_init, progress, prior)
    return one_se_choice(per, d.n_votes, "k")


def one_se_choice(per: dict[int, F64], n_votes: int, key: str) -> tuple[int, list[dict[str, Any]]]:
    """Of candidates ordered simplest first, each with its per-annotator held-out
    log-likelihoods, the first within one standard error (paired over annotators) of the best
    total: (choice, one record per candidate)."""
    totals = {c: float(v.sum()) for c, v in per.items()}
    best = max(totals, key=lambda c: totals[c])
    rows = []
    for c, v in per.items():
        diff = v - per[best]
        se = float(diff.std(ddof=1) * np.sqrt(diff.size)) if diff.size > 1 else 0.0
        rows.append(
            {
                key: c,
                "heldout_loglik": totals[c] / n_votes,
                "heldout_loglik_total": totals[c],
                "difference": totals[c] - totals[best],
                "se": se,
            }
        )
    chosen = next(int(r[key]) for r in rows if r["difference"] >= -r["se"])
    for r in rows:
        r["chosen"] = r[key] == chosen
    return chosen, rows


def with_context(des: Design, components: int) -> Design:
    """The design keeping only the first `components` prompt-context components (0: none)."""
    keep_f = [
        f for f in des.features if "*ctx" not in f or int(f.rsplit("*ctx", 1)[1]) <= components
    ]
    n_items = len(des.item_names)
    cols = list(range(n_items)) + [n_items + des.features.index(f) for f in keep_f]
    d = des.data
    data = replace(d, x=d.x[:, cols], penalty=d.penalty[cols],
                   names=tuple(d.names[q] for q in cols))  # fmt: skip
    return replace(des, data=data, features=tuple(keep_f))


def coef_covariances(d: MixtureData, fit: MixtureFit) -> list[F64]:
    """Covariance (P x P) of every group's coefficients: the inverse penalised Hessian of its
    posterior-weighted fit, i.e. conditional on the fitted memberships (it omits the
    uncertainty of who belongs to which group)."""
    y = _unit_counts(d, cells(d).T.tocsr(), fit.posterior)
    dv = derivs(d.model, _eta(d.x, fit.coef), fit.tau[:, None], y)
    return [
        np.asarray(np.linalg.pinv(_gram(d.x, dv.fee[g]) + np.diag(d.penalty)), dtype=np.float64)
        for g in range(fit.k)
    ]


# ---------------------------------------------------------------------------------------
# Design matrices from canonical comparisons


def _onehot_diff(a: I64, b: I64, k: int) -> sp.csr_matrix:
    u = a.size
    rows = np.concatenate([np.arange(u), np.arange(u)])
    cols = np.concatenate([a, b])
    vals = np.concatenate([np.ones(u), -np.ones(u)])
    keep = cols >= 0
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(u, k))


@dataclass(frozen=True)
class Design:
    data: MixtureData
    rows: I64  # source row of every vote
    items: Literal["model", "response"]
    item_names: tuple[str, ...]  # models (columns 0..len-1 of the design)
    features: tuple[str, ...]  # feature columns after the models
    skipped: dict[str, int]
    annotator_of_row: list[str | None]


def _annotators(table: pa.Table) -> list[str | None]:
    if "annotator" not in table.column_names:
        raise RankInputError("column 'annotator' missing: latent groups are groups of annotators")
    return [None if a is None or a == "" else str(a) for a in table.column("annotator").to_pylist()]


_REL = {"a": 0, "b": 1, "tie": 2, "both_bad": 2}


def design_models(table: pa.Table, model: MixtureModel = "bt", ties: str = "half") -> Design:
    """Votes alone: units are unordered model pairs, the design is e_i − e_j."""
    ann = _annotators(table)
    ma, mb = table.column("model_a").to_pylist(), table.column("model_b").to_pylist()
    out = table.column("outcome").to_pylist()
    skipped = {"no_annotator": 0, "missing_model": 0, "self_battle": 0}
    rows: list[int] = []
    for r, (u, a, b) in enumerate(zip(ann, ma, mb, strict=True)):
        if u is None:
            skipped["no_annotator"] += 1
        elif a is None or b is None:
            skipped["missing_model"] += 1
        elif a == b:
            skipped["self_battle"] += 1
        else:
            rows.append(r)
    if not rows:
        raise RankInputError(
            "no vote with an annotator and two different model names: the mixture over models "
            "needs model_a/model_b (or use --items response with response text)"
        )
    names = sorted({str(ma[r]) for r in rows} | {str(mb[r]) for r in rows})
    idx = {n: q for q, n in enumerate(names)}
    a = np.array([idx[str(ma[r])] for r in rows], dtype=np.int64)
    b = np.array([idx[str(mb[r])] for r in rows], dtype=np.int64)
    k = len(names)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    uniq, unit = np.unique(lo * k + hi, return_inverse=True)
    rel = np.array([_REL[str(out[r])] for r in rows], dtype=np.int64)
    rel = np.where((a > b) & (rel < 2), 1 - rel, rel)
    x = _onehot_diff(uniq // k, uniq % k, k)
    return _design(table, ann, rows, unit, rel, x, np.full(k, ITEM_PRIOR), tuple(names), (),
                   "model", model, ties, skipped)  # fmt: skip


def design_responses(
    table: pa.Table,
    model: MixtureModel = "bt",
    ties: str = "half",
    progress: Callable[[str], None] | None = None,
    context: int = 0,
    context_features: Sequence[str] = CONTEXT_FEATURES,
    embed_cache: str | Path | None = None,
    stance: Sequence[str] = MIXTURE_STANCE,
) -> Design:
    """With text: units are the compared pairs of responses (`meta.pair_id`, else prompt and
    the two texts), the design is the models' one-hot difference (when named) and the
    standardised difference of the responses' features (`prefkit.reward.features`, plus the
    `stance` columns of `prefkit.rank.stance`: epistemic hedges, specific and generic
    sentences, sentence specificity); with `context` > 0, also those features' differences (`context_features`, or
    ("all",)) times the prompts' leading embedding components (`context_columns`)."""
    from prefkit.build.pairs import orient, vote_groups
    from prefkit.rank.stance import stance_features
    from prefkit.reward.features import response_features
    from prefkit.schema import messages_text

    ann = _annotators(table)
    for col in ("response_a", "response_b"):
        if col not in table.column_names:
            raise RankInputError(f"column {col!r} missing: --items response needs response text")
    ra, rb = table.column("response_a").to_pylist(), table.column("response_b").to_pylist()
    skipped = {"no_annotator": 0, "missing_text": 0, "identical_responses": 0}
    rows: list[int] = []
    for r, (u, a, b) in enumerate(zip(ann, ra, rb, strict=True)):
        ta, tb = messages_text(a), messages_text(b)
        if u is None:
            skipped["no_annotator"] += 1
        elif not ta.strip() or not tb.strip():
            skipped["missing_text"] += 1
        elif ta == tb:
            skipped["identical_responses"] += 1
        else:
            rows.append(r)
    if not rows:
        raise RankInputError("no vote with an annotator and two different response texts")
    sub = table.take(pa.array(rows, pa.int64()))
    unit, flipped, groups = vote_groups(sub)
    ori = orient(sub, flipped)
    heads = pa.array([g[0] for g in groups], pa.int64())
    head = ori.take(heads)
    prompts = [messages_text(p) for p in head.column("prompt").to_pylist()]
    texts_a = [messages_text(m) for m in head.column("response_a").to_pylist()]
    texts_b = [messages_text(m) for m in head.column("response_b").to_pylist()]
    # features once per distinct (prompt, response)
    key_of: dict[tuple[str, str], int] = {}
    for p, t in zip(prompts + prompts, texts_a + texts_b, strict=True):
        key_of.setdefault((p, t), len(key_of))
    if progress is not None:
        progress(f"features of {len(key_of)} responses")
    keys = list(key_of)
    phi, fnames = response_features([k[0] for k in keys], [k[1] for k in keys])
    if stance:
        st, snames = stance_features([k[0] for k in keys], [k[1] for k in keys])
        phi = np.hstack([phi, st[:, [snames.index(c) for c in stance]]])
        fnames = [*fnames, *stance]
    ia = np.array([key_of[(p, t)] for p, t in zip(prompts, texts_a, strict=True)])
    ib = np.array([key_of[(p, t)] for p, t in zip(prompts, texts_b, strict=True)])
    diff = phi[ia] - phi[ib]
    sd = diff.std(axis=0)
    keep = sd > 1e-12
    diff = diff[:, keep] / sd[keep]
    feats = tuple(f for f, kp in zip(fnames, keep.tolist(), strict=True) if kp)
    ma, mb = head.column("model_a").to_pylist(), head.column("model_b").to_pylist()
    names = sorted({str(m) for m in ma + mb if m is not None})
    idx = {n: q for q, n in enumerate(names)}
    mx = _onehot_diff(
        np.array([idx.get(str(m), -1) if m is not None else -1 for m in ma], dtype=np.int64),
        np.array([idx.get(str(m), -1) if m is not None else -1 for m in mb], dtype=np.int64),
        len(names),
    )
    x = np.hstack([np.asarray(mx.todense()), diff])
    pen = np.concatenate([np.full(len(names), ITEM_PRIOR), np.full(len(feats), FEATURE_PRIOR)])
    if context > 0:
        context_names(feats, context_features)  # bad names fail before the encoder loads
        if progress is not None:
            progress(f"prompt context: {context} component(s) of the prompt embeddings")
        inter, inames = context_columns(
            diff, feats, prompt_context(prompts, context, embed_cache), context_features
        )
        x = np.hstack([x, inter])
        pen = np.concatenate([pen, np.full(len(inames), CONTEXT_PRIOR)])
        feats = feats + inames
    out = ori.column("outcome").to_pylist()
    rel = np.array([_REL[str(o)] for o in out], dtype=np.int64)
    return _design(table, ann, rows, unit, rel, x, pen, tuple(names), feats, "response", model,
                   ties, skipped)  # fmt: skip


def prompt_context(
    prompts: Sequence[str], components: int, cache_dir: str | Path | None = None
) -> F64:
    """(len(prompts), c): every prompt's coordinates on the c = min(`components`, distinct
    prompts − 1) leading principal components of the distinct prompts' MiniLM embeddings,
    each scaled to unit standard deviation over the distinct prompts."""
    from prefkit.reward.embed import embed_texts

    uniq = sorted(set(prompts))
    if len(uniq) < 2:
        raise RankInputError("--context needs at least two distinct prompts")
    e = np.asarray(embed_texts(uniq, cache_dir=cache_dir), dtype=np.float64)
    e -= e.mean(axis=0)
    u, s, _ = np.linalg.svd(e, full_matrices=False)
    c = min(components, len(uniq) - 1, int((s > 1e-9 * s[0]).sum()))
    z = u[:, :c] * s[:c]
    z /= z.std(axis=0)
    idx = {p: q for q, p in enumerate(uniq)}
    return np.asarray(z[[idx[p] for p in prompts]], dtype=np.float64)


def context_names(feats: Sequence[str], chosen: Sequence[str]) -> list[str]:
    """The features named by `chosen` (("all",) = every one), checked against `feats`."""
    names = list(feats) if tuple(chosen) == ("all",) else list(chosen)
    missing = [f for f in names if f not in feats]
    if missing:
        raise RankInputError(
            f"--context-features: {', '.join(missing)} not among the features that vary in "
            f"this data ({', '.join(feats)})"
        )
    return names


def context_columns(
    diff: F64, feats: Sequence[str], z: F64, chosen: Sequence[str]
) -> tuple[F64, tuple[str, ...]]:
    """Interaction columns diff[:, f] * z[:, j] for every chosen feature f (names in `feats`,
    or ("all",)) and context component j, each standardised, and their names `f*ctx{j+1}`."""
    names = context_names(feats, chosen)
    cols = [feats.index(f) for f in names]
    inter = (diff[:, cols, None] * z[:, None, :]).reshape(diff.shape[0], -1)
    sd = inter.std(axis=0)
    keep = sd > 1e-12
    labels = [f"{f}*ctx{j + 1}" for f in names for j in range(z.shape[1])]
    return inter[:, keep] / sd[keep], tuple(
        n for n, k in zip(labels, keep.tolist(), strict=True) if k
    )


def _design(
    table: pa.Table,
    ann: list[str | None],
    rows: list[int],
    unit: I64,
    rel: I64,
    x: sp.csr_matrix | F64,
    penalty: F64,
    names: tuple[str, ...],
    feats: tuple[str, ...],
    items: Literal["model", "response"],
    model: MixtureModel,
    ties: str,
    skipped: dict[str, int],
) -> Design:
    if model not in ("bt", "davidson"):
        raise RankInputError(f"unknown mixture model {model!r}: bt or davidson")
    ties = "model" if model == "davidson" else ties
    if isinstance(x, sp.spmatrix) and x.shape[0] * x.shape[1] <= DENSE_MAX_CELLS:
        x = np.asarray(x.todense(), dtype=np.float64)
    r = np.asarray(rows, dtype=np.int64)
    labels = [ann[q] for q in rows]
    annotators = tuple(sorted(set(labels)))  # type: ignore[type-var]
    aidx = {a: q for q, a in enumerate(annotators)}
    y3 = np.zeros((r.size, 3))
    y3[np.arange(r.size), rel] = 1.0
    data = MixtureData(
        x, np.asarray(unit, dtype=np.int64),
        np.fromiter((aidx[a] for a in labels), np.int64, len(labels)), y3, penalty,
        tuple(str(a) for a in annotators), names + tuple(f"feature:{f}" for f in feats),
        model, ties,
    )  # fmt: skip
    if model == "davidson" and not y3[:, 2].any():
        raise RankInputError("no ties in the votes: the Davidson mixture needs ties; use bt")
    return Design(data, r, items, names, feats, {k: v for k, v in skipped.items() if v}, ann)


def mixture_table(
    table: pa.Table,
    groups: int | None = None,
    items: Literal["auto", "model", "response"] = "auto",
    model: MixtureModel = "bt",
    ties: str = "half",
    seed: int = 0,
    level: float = 0.95,
    max_groups: int = MAX_AUTO_GROUPS,
    n_init: int = 8,
    progress: Callable[[str], None] | None = None,
    steps: Callable[[int, int], None] | None = None,
    context: int | Literal["auto"] = 0,
    context_features: Sequence[str] = CONTEXT_FEATURES,
    embed_cache: str | Path | None = None,
    prior: Literal["fixed", "evidence"] = "fixed",
) -> tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]:
    """`prefkit aggregate --method bt-mixture`: (the votes with `meta.group` and
    `meta.group_posterior` added for every row whose annotator was fitted, the annotators
    table, the per-group scores table, a summary). `progress` gets status lines; `steps(done,
    total)` counts the fits (each (K, fold) of the choice of K, then the final fit)."""
    from scipy.stats import norm

    from prefkit.schema import Kind, conform

    if table.num_rows == 0:
        raise RankInputError("no votes (empty table)")
    if items == "auto":
        has_text = (
            "response_a" in table.column_names
            and table.column("response_a").null_count < table.num_rows
        )
        items = "response" if has_text else "model"
    if items not in ("model", "response"):
        raise RankInputError(f"unknown items {items!r}: auto, model or response")
    auto_ctx = context == "auto"
    n_ctx = max(CONTEXT_AUTO) if auto_ctx else int(context)
    if n_ctx < 0:
        raise RankInputError("--context must be >= 0")
    if n_ctx and items == "model":
        raise RankInputError("--context needs response text (--items response)")
    say = progress or (lambda _m: None)
    full = (
        design_models(table, model, ties)
        if items == "model"
        else design_responses(table, model, ties, say, n_ctx, context_features, embed_cache)
    )
    # with --context auto, K is chosen without the context columns, then the context at K
    des = with_context(full, 0) if auto_ctx else full
    d = des.data
    rng = np.random.default_rng(seed)
    selection = None
    context_selection = None
    ks = list(range(1, min(max_groups, d.n_annotators) + 1)) if groups is None else []
    total = (len(ks) + (len(CONTEXT_AUTO) if auto_ctx else 0)) * FOLDS + 1
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if steps is not None:
            steps(done[0], total)

    if steps is not None:
        steps(0, total)
    if groups is None:
        say(f"choosing the number of groups among {ks[0]}..{ks[-1]} by held-out likelihood")
        k, selection = select_groups(d, ks, rng, progress=tick, prior=prior)
    else:
        k = int(groups)
        if k < 1:
            raise RankInputError("--groups must be >= 1")
    if auto_ctx:
        say(f"choosing the prompt context among {CONTEXT_AUTO} component(s) at K = {k}")
        fold = folds_of(d, FOLDS, rng)
        per = {
            c: heldout_loglik(with_context(full, c).data, fold, k, rng, 4, tick, prior)
            for c in CONTEXT_AUTO
        }
        n_ctx, context_selection = one_se_choice(per, d.n_votes, "components")
        des = with_context(full, n_ctx)
        d = des.data
    say(f"fitting {k} group(s) on {d.n_votes} votes by {d.n_annotators} annotators")
    fit = fit_mixture(d, k, rng, n_init=n_init, prior=prior)
    if steps is not None:
        steps(total, total)
    if fit.feature_prior is not None:
        d = with_feature_prior(d, fit.feature_prior)
    covs = coef_covariances(d, fit)
    z = float(norm.ppf(0.5 + level / 2.0))
    gnames = [f"g{q + 1}" for q in range(k)]
    label = fit.posterior.argmax(axis=1)
    # scores: items centred per group (covariance projected), features as fitted
    n_items = len(des.item_names)
    recs: dict[str, list[Any]] = {
        c: [] for c in ("group", "kind", "name", "score", "se", "ci_low", "ci_high")
    }
    top: dict[str, list[str]] = {}
    for g in range(k):
        beta, cov = fit.coef[g], covs[g]
        if n_items:
            proj = np.eye(n_items) - 1.0 / n_items
            th = proj @ beta[:n_items]
            se = np.sqrt(np.clip(np.diag(proj @ cov[:n_items, :n_items] @ proj), 0.0, None))
            for q in np.argsort(-th).tolist():
                _rec(recs, gnames[g], "item", des.item_names[q], th[q], se[q], z)
            top[gnames[g]] = [des.item_names[q] for q in np.argsort(-th)[:5].tolist()]
        for q, f in enumerate(des.features):
            c = n_items + q
            _rec(recs, gnames[g], "feature", f, beta[c], float(np.sqrt(max(cov[c, c], 0.0))), z)
    scores = pa.table(recs)
    # annotators
    n_votes = np.bincount(d.annotator, minlength=d.n_annotators)
    ann_table = pa.table(
        {
            "annotator": list(d.annotators),
            "n_votes": n_votes.tolist(),
            "group": [gnames[q] for q in label.tolist()],
            "posterior": pa.array(fit.posterior.tolist(), pa.list_(pa.float64())),
            "posterior_max": fit.posterior.max(axis=1).tolist(),
        }
    )
    # the votes, each labelled with its annotator's group
    group_of = {
        a: (gnames[label[q]], float(fit.posterior[q].max())) for q, a in enumerate(d.annotators)
    }
    metas = (
        table.column("meta").to_pylist()
        if "meta" in table.column_names
        else [None] * table.num_rows
    )
    meta_out = []
    unlabelled = 0
    for a, m in zip(des.annotator_of_row, metas, strict=True):
        md = dict(m) if m else {}
        hit = group_of.get(a) if a is not None else None
        if hit is None:
            unlabelled += 1
        else:
            md["group"], md["group_posterior"] = hit[0], f"{hit[1]:.6f}"
        meta_out.append(list(md.items()))
    cols = {n: table.column(n) for n in table.column_names}
    cols["meta"] = pa.array(meta_out, pa.map_(pa.string(), pa.string()))
    out = conform(pa.table(cols), Kind.COMPARISONS)
    sizes = np.bincount(label, minlength=k)
    summary: dict[str, Any] = {
        "method": "bt-mixture",
        "items": items,
        "model": model,
        "ties": d.ties,
        "votes": int(table.num_rows),
        "votes_used": d.n_votes,
        "annotators": d.n_annotators,
        "skipped": des.skipped,
        "rows_without_group": unlabelled,
        "groups_requested": "auto" if groups is None else int(groups),
        "groups": k,
        "selection": selection,
        "folds": FOLDS if selection is not None else None,
        "weights": {gnames[q]: float(fit.weights[q]) for q in range(k)},
        "group_sizes": {gnames[q]: int(sizes[q]) for q in range(k)},
        "mean_posterior_max": float(fit.posterior.max(axis=1).mean()),
        "loglik": fit.loglik,
        "iterations": fit.iterations,
        "converged": fit.converged,
        "item_names": list(des.item_names),
        "features": list(des.features),
        "top_items": top,
        "level": level,
        "priors": {
            "items": ITEM_PRIOR,
            "features": FEATURE_PRIOR if fit.feature_prior is None else fit.feature_prior,
            "context": CONTEXT_PRIOR,
        },
        "feature_prior": "evidence" if fit.feature_prior is not None else "fixed",
        "context": {
            "components": n_ctx,
            "requested": context,
            "features": [f for f in des.features if "*ctx" in f],
            "selection": context_selection,
        },
    }
    return out, ann_table, scores, summary


def _rec(recs: dict[str, list[Any]], group: str, kind: str, name: str, score: float,
         se: float, z: float) -> None:  # fmt: skip
    recs["group"].append(group)
    recs["kind"].append(kind)
    recs["name"].append(name)
    recs["score"].append(float(score))
    recs["se"].append(float(se))
    recs["ci_low"].append(float(score - z * se))
    recs["ci_high"].append(float(score + z * se))
