"""Bradley–Terry, Davidson and Rao–Kupper models fitted exactly by Newton's method.

Every model is written in terms of the linear predictor of a unit (a pair of items, or one
battle when there are covariates) ``eta = theta_i - theta_j (+ z @ gamma)`` and, for the tie
models, one tie parameter:

- ``bt``: P(i) = sigmoid(eta); ties count half a win for each side (``ties="half"``) or are
  dropped (``ties="drop"``).
- ``davidson`` (Davidson 1970): P(i) ∝ e^{eta/2}, P(j) ∝ e^{-eta/2}, P(tie) ∝ nu; the
  parameter is tau = log nu.
- ``rao-kupper`` (Rao & Kupper 1967): P(i) = sigmoid(eta - a), P(j) = sigmoid(-eta - a),
  P(tie) = the rest, a = log kappa > 0; the parameter is rho = log a.

The negative log-likelihood (plus ``prior/2 * |theta|^2``) is minimised by Newton's method
with a backtracking line search. The Hessian's log-strength block is a weighted graph
Laplacian: solved densely for a few thousand items, by preconditioned conjugate gradients
on a sparse matrix beyond (memory O(items + pairs), never K x K). Strengths are identified
up to a constant: reported centred at mean 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from prefkit.rank.data import Counts, RankInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Model = Literal["bt", "davidson", "rao-kupper"]
TiePolicy = Literal["half", "drop", "model"]
MODELS: tuple[str, ...] = ("bt", "davidson", "rao-kupper")
TIE_POLICIES: tuple[str, ...] = ("half", "drop", "model")
AUTO_PRIOR = 0.1  # L2 precision used when the maximum-likelihood estimate does not exist
DENSE_MAX = 400  # items up to which the Newton system is solved densely (beyond: sparse CG)


@dataclass(frozen=True)
class RankConfig:
    """How to fit. `ties=None` means half for bt and model for davidson/rao-kupper.

    `prior`: L2 precision on log-strengths (a Gaussian prior with variance 1/prior); None =
    automatic: 0 (exact maximum likelihood) when the estimate exists, else `AUTO_PRIOR` and a
    note naming the items that never win or never lose. `components`: a disconnected
    comparison graph is refused (`refuse`) or only its largest component is ranked
    (`largest`, the other items are reported as dropped)."""

    model: Model = "bt"
    ties: TiePolicy | None = None
    prior: float | None = None
    tol: float = 1e-10
    max_iter: int = 200
    components: Literal["refuse", "largest"] = "refuse"

    def tie_policy(self) -> TiePolicy:
        if self.ties is not None:
            return self.ties
        return "half" if self.model == "bt" else "model"


@dataclass(frozen=True)
class Problem:
    """A fitting problem: units (pairs or battles), their outcome counts after the tie
    policy, covariates, and the resolved prior. `n`/`w2` keep battle counts per unit and
    outcome (a, b, tie, before the tie policy) for resampling and the sandwich."""

    items: tuple[str, ...]
    model: Model
    ties: TiePolicy
    i: I64
    j: I64
    y: F64  # (units, 3) weighted counts: i wins, j wins, tie (after the tie policy)
    y3: F64  # (units, 3) weighted counts before the tie policy
    n: NDArray[np.int64]  # (units, 3) battle counts before the tie policy
    w2: F64  # (units, 3) squared weights before the tie policy
    pair: I64  # unit -> unique pair
    pi: I64
    pj: I64
    z: F64 | None
    prior: float
    notes: tuple[str, ...] = ()
    dropped_items: tuple[str, ...] = ()
    tol: float = 1e-10
    max_iter: int = 200
    z_names: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return len(self.items)

    @property
    def has_tie(self) -> bool:
        return self.model != "bt"

    @property
    def n_extra(self) -> int:
        return int(self.has_tie) + (0 if self.z is None else self.z.shape[1])


@dataclass(frozen=True)
class Fit:
    """A fitted model. `theta`: natural-log strengths centred at mean 0; `tie`: Davidson nu
    or Rao–Kupper kappa (None for bt); `gamma`: covariate coefficients (style control)."""

    items: tuple[str, ...]
    model: Model
    ties: TiePolicy
    theta: F64
    tie: float | None
    gamma: F64
    prior: float
    loglik: float
    iterations: int
    notes: tuple[str, ...] = ()
    dropped_items: tuple[str, ...] = ()
    x: F64 = field(default_factory=lambda: np.zeros(0))  # full parameter vector


def tie_counts(y3: F64, model: Model, ties: TiePolicy) -> F64:
    """Apply the tie policy to (units, 3) counts (i wins, j wins, tie)."""
    if model != "bt":
        if ties != "model":
            raise RankInputError(
                f"model {model} estimates ties itself: use ties='model' (got {ties!r})"
            )
        return y3.astype(np.float64, copy=True)
    if ties == "model":
        raise RankInputError("ties='model' needs model='davidson' or 'rao-kupper'")
    y = y3.astype(np.float64, copy=True)
    if ties == "half":
        y[:, 0] += 0.5 * y[:, 2]
        y[:, 1] += 0.5 * y[:, 2]
    y[:, 2] = 0.0
    return y


def problem(counts: Counts, config: RankConfig = RankConfig()) -> Problem:
    """Validate and prepare a fitting problem from aggregated counts (no covariates)."""
    y3 = np.stack([counts.wins, counts.losses, counts.ties], axis=1)
    pairs = np.arange(counts.i.size, dtype=np.int64)
    return build_problem(
        counts.items, counts.i, counts.j, y3, counts.n, counts.w2, pairs, counts.i, counts.j,
        None, config,
    )  # fmt: skip


def build_problem(
    items: tuple[str, ...],
    i: I64,
    j: I64,
    y3: F64,
    n: NDArray[np.int64],
    w2: F64,
    pair: I64,
    pi: I64,
    pj: I64,
    z: F64 | None,
    config: RankConfig,
) -> Problem:
    """Checks shared by every model: enough items, no empty problem, a connected graph (or
    its largest component), the tie parameter identifiable, the prior resolved."""
    if config.model not in MODELS:
        raise RankInputError(f"unknown model {config.model!r}; choose from {', '.join(MODELS)}")
    ties = config.tie_policy()
    if ties not in TIE_POLICIES:
        raise RankInputError(f"unknown tie policy {ties!r}; choose from half, drop, model")
    y = tie_counts(y3, config.model, ties)
    notes: list[str] = []
    used = y.sum(axis=1) > 0
    if ties == "drop" and int(n[:, 2].sum()):
        notes.append(f"{int(n[:, 2].sum())} tied battles dropped (ties='drop')")
    k = len(items)
    if k < 2:
        only = f" ({items[0]})" if items else ""
        raise RankInputError(
            f"only {k} item{only} with battles against another item: a leaderboard needs at "
            "least two"
        )
    seen = np.zeros(k, dtype=bool)
    seen[i[used]] = True
    seen[j[used]] = True
    if not used.any():
        raise RankInputError(
            "no battle left to fit (every battle is a tie and ties are dropped)"
            if ties == "drop"
            else "no battle with a positive weight"
        )
    dropped: list[str] = []
    if not seen.all():
        dropped += [items[t] for t in np.flatnonzero(~seen).tolist()]
        notes.append(f"{len(dropped)} item(s) without a usable battle dropped")
    # connected components of the comparison graph among the items that were seen
    g = sp.coo_matrix((np.ones(int(used.sum())), (i[used], j[used])), shape=(k, k))
    n_comp, label = connected_components(g, directed=False)
    comp_sizes = np.bincount(label[seen], minlength=n_comp)
    real = np.flatnonzero(comp_sizes > 0)
    keep_items = seen.copy()
    if real.size > 1:
        sizes = sorted(comp_sizes[real].tolist(), reverse=True)
        shown = ", ".join(str(s) for s in sizes[:5]) + (", ..." if len(sizes) > 5 else "")
        if config.components == "refuse":
            raise RankInputError(
                f"the comparison graph has {real.size} disconnected components (sizes {shown}):"
                " scores in different components are not comparable; rank the largest with "
                "--components largest (library: components='largest') or add battles that "
                "connect them"
            )
        big = int(real[np.argmax(comp_sizes[real])])
        out = seen & (label != big)
        dropped += [items[t] for t in np.flatnonzero(out).tolist()]
        notes.append(
            f"{real.size} disconnected components (sizes {shown}): ranked the largest "
            f"({int(comp_sizes[big])} items), dropped {int(out.sum())} items"
        )
        keep_items = seen & (label == big)
    if not keep_items.all():
        remap = np.full(k, -1, dtype=np.int64)
        remap[keep_items] = np.arange(int(keep_items.sum()))
        ku = used & keep_items[i] & keep_items[j]
        items = tuple(s for s, kp in zip(items, keep_items.tolist(), strict=True) if kp)
        i, j = remap[i[ku]], remap[j[ku]]
        y, y3, n, w2 = y[ku], y3[ku], n[ku], w2[ku]
        z = None if z is None else z[ku]
        pmap = np.full(pi.size, -1, dtype=np.int64)
        pkeep = keep_items[pi] & keep_items[pj]
        pmap[pkeep] = np.arange(int(pkeep.sum()))
        pair = pmap[pair[ku]]
        pi, pj = remap[pi[pkeep]], remap[pj[pkeep]]
        if len(items) < 2:
            raise RankInputError("fewer than two items left after dropping: nothing to rank")
    if config.model != "bt":
        tot_ties = float(y[:, 2].sum())
        decisive = float(y[:, :2].sum())
        if tot_ties <= 0:
            raise RankInputError(
                f"no ties in the data: the {config.model} tie parameter would be 0; use model bt"
            )
        if decisive <= 0:
            raise RankInputError(
                f"every battle is a tie: the {config.model} tie parameter is infinite and "
                "all items are equal; use model bt with ties='half' (every score equal)"
            )
    prior = config.prior
    if prior is not None and (not np.isfinite(prior) or prior < 0):
        raise RankInputError(f"prior must be a finite number >= 0, got {prior!r}")
    lonely = _not_strongly_connected(len(items), i, j, y) if not prior else []
    if prior == 0 and lonely:
        names = ", ".join(items[t] for t in lonely[:5]) + (", ..." if len(lonely) > 5 else "")
        raise RankInputError(
            f"{len(lonely)} item(s) never win or never lose against the rest ({names}): the "
            "maximum-likelihood strengths are infinite with prior 0; leave the prior "
            f"automatic or give one (--prior {AUTO_PRIOR})"
        )
    if prior is None:
        prior = 0.0
        if lonely:
            prior = AUTO_PRIOR
            names = ", ".join(items[t] for t in lonely[:5]) + (", ..." if len(lonely) > 5 else "")
            notes.append(
                f"{len(lonely)} item(s) never win or never lose against the rest ({names}): "
                f"the maximum-likelihood strengths would be infinite, so an L2 prior "
                f"(precision {AUTO_PRIOR}) keeps them finite"
            )
    return Problem(
        items, config.model, ties, i, j, y, y3, n, w2, pair, pi, pj, z, float(prior),
        tuple(notes), tuple(dropped), config.tol, config.max_iter,
    )  # fmt: skip


def _not_strongly_connected(k: int, i: I64, j: I64, y: F64) -> list[int]:
    """Items outside the main strongly connected component of the 'beat or tied' digraph
    (an edge u -> v when u won or tied against v): where the MLE runs off to infinity."""
    ij = (y[:, 0] + y[:, 2]) > 0  # i won or tied against j: edge i -> j
    ji = (y[:, 1] + y[:, 2]) > 0
    src = np.concatenate([i[ij], j[ji]])
    dst = np.concatenate([j[ij], i[ji]])
    g = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(k, k))
    n_comp, label = connected_components(g, directed=True, connection="strong")
    if n_comp == 1:
        return []
    big = int(np.argmax(np.bincount(label)))
    return np.flatnonzero(label != big).tolist()


# ---------------------------------------------------------------------------------------
# Per-unit negative log-likelihood and its derivatives in (eta, tie parameter)


@dataclass(frozen=True)
class Derivs:
    f: F64
    fe: F64
    fee: F64
    ft: F64
    ftt: F64
    fet: F64


def _softplus(x: F64) -> F64:
    return np.asarray(np.logaddexp(0.0, x), dtype=np.float64)


def _sigmoid(x: F64) -> F64:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)


def derivs(model: Model, eta: F64, t: F64 | float, y: F64) -> Derivs:
    """Negative log-likelihood per unit and derivatives; `y[..., 0:3]` = (i wins, j wins,
    tie) counts; any leading batch dimensions broadcast."""
    ya, yb, yt = y[..., 0], y[..., 1], y[..., 2]
    zero = np.zeros_like(eta)
    if model == "bt":
        e = np.exp(-np.abs(eta))
        sp_pos = np.maximum(eta, 0.0) + np.log1p(e)  # softplus(eta)
        inv = 1.0 / (1.0 + e)
        s = np.where(eta >= 0, inv, e * inv)
        tot = ya + yb
        f = ya * (sp_pos - eta) + yb * sp_pos
        return Derivs(f, tot * s - ya, tot * s * (1.0 - s), zero, zero, zero)
    if model == "davidson":
        tau = np.broadcast_to(np.asarray(t, dtype=np.float64), eta.shape)
        logz = np.logaddexp(np.logaddexp(0.5 * eta, -0.5 * eta), tau)
        pa = np.exp(0.5 * eta - logz)
        pb = np.exp(-0.5 * eta - logz)
        pt = np.exp(tau - logz)
        n = ya + yb + yt
        f = -(0.5 * ya * eta - 0.5 * yb * eta + yt * tau) + n * logz
        d = pa - pb
        return Derivs(
            f,
            -0.5 * (ya - yb) + 0.5 * n * d,
            n * (0.25 * (pa + pb) - 0.25 * d * d),
            -yt + n * pt,
            n * pt * (1.0 - pt),
            -0.5 * n * pt * d,
        )
    # Rao–Kupper, a = exp(rho)
    rho = np.broadcast_to(np.asarray(t, dtype=np.float64), eta.shape)
    a = np.exp(rho)
    sa = _sigmoid(eta - a)
    sb = _sigmoid(-eta - a)
    ptie = np.maximum(_sigmoid(a - eta) - sb, 1e-300)
    va, vb = sa * (1.0 - sa), sb * (1.0 - sb)
    lsa = -_softplus(a - eta)
    lsb = -_softplus(eta + a)
    lpt = np.log(ptie)
    f = -(ya * lsa + yb * lsb + yt * lpt)
    pt_e, pt_a = -va + vb, va + vb
    c = -va * (1.0 - 2.0 * sa)
    dd = vb * (1.0 - 2.0 * sb)
    pt_ee = c - dd
    pt_aa = c - dd
    pt_ea = -c - dd
    le = ya * (1.0 - sa) - yb * (1.0 - sb) + yt * pt_e / ptie
    la = -ya * (1.0 - sa) - yb * (1.0 - sb) + yt * pt_a / ptie
    lee = -ya * va - yb * vb + yt * (pt_ee / ptie - (pt_e / ptie) ** 2)
    laa = -ya * va - yb * vb + yt * (pt_aa / ptie - (pt_a / ptie) ** 2)
    lea = ya * va - yb * vb + yt * (pt_ea / ptie - pt_e * pt_a / ptie**2)
    return Derivs(f, -le, -lee, -a * la, -(a * a * laa + a * la), -a * lea)


def tie_param_init(p: Problem) -> float:
    tot = p.y.sum()
    pt = float(np.clip(p.y[:, 2].sum() / tot, 1e-3, 0.999)) if tot > 0 else 0.1
    if p.model == "davidson":
        return float(np.log(2.0 * pt / (1.0 - pt)))
    if p.model == "rao-kupper":
        return float(np.log(np.log((1.0 + pt) / (1.0 - pt))))
    return 0.0


# ---------------------------------------------------------------------------------------
# The Newton system


@dataclass(frozen=True)
class _Ops:
    """Sparse operators of a problem: X (units x K, +1/-1), unit -> pair, pair -> items."""

    x: sp.csr_matrix
    xt: sp.csr_matrix
    qt: sp.csr_matrix | None  # pairs x units (None when units are the pairs)
    st: sp.csr_matrix  # K x pairs incidence (1 at both ends)
    lap_perm: I64  # CSR data order of the symmetric off-diagonal pattern
    lap_indices: NDArray[np.int32]
    lap_indptr: NDArray[np.int32]


def _ops(p: Problem) -> _Ops:
    u = p.i.size
    k = p.k
    rows = np.concatenate([np.arange(u), np.arange(u)])
    x = sp.csr_matrix(
        (np.concatenate([np.ones(u), -np.ones(u)]), (rows, np.concatenate([p.i, p.j]))),
        shape=(u, k),
    )
    npair = p.pi.size
    identity = u == npair and bool(np.array_equal(p.pair, np.arange(u)))
    qt = None
    if not identity:
        qt = sp.csr_matrix((np.ones(u), (p.pair, np.arange(u))), shape=(npair, u))
    st = sp.csr_matrix(
        (
            np.ones(2 * npair),
            (np.concatenate([p.pi, p.pj]), np.concatenate([np.arange(npair)] * 2)),
        ),
        shape=(k, npair),
    )
    r = np.concatenate([p.pi, p.pj])
    c = np.concatenate([p.pj, p.pi])
    pat = sp.csr_matrix((np.arange(1, 2 * npair + 1, dtype=np.float64), (r, c)), shape=(k, k))
    perm = (pat.data.astype(np.int64) - 1) % npair
    return _Ops(
        x, x.T.tocsr(), qt, st, perm, pat.indices.astype(np.int32), pat.indptr.astype(np.int32)
    )


def _eta(p: Problem, ops: _Ops, theta: F64, gamma: F64) -> F64:
    eta = theta[p.i] - theta[p.j]
    if p.z is not None:
        eta = eta + p.z @ gamma
    return np.asarray(eta, dtype=np.float64)


def _split(p: Problem, x: F64) -> tuple[F64, float, F64]:
    k = p.k
    theta = x[:k]
    t = float(x[k]) if p.has_tie else 0.0
    gamma = x[k + int(p.has_tie) :]
    return theta, t, gamma


def objective(p: Problem, x: F64, y: F64 | None = None) -> float:
    ops = _ops_cache(p)
    theta, t, gamma = _split(p, x)
    d = derivs(p.model, _eta(p, ops, theta, gamma), t, p.y if y is None else y)
    return float(d.f.sum() + 0.5 * p.prior * float((theta * theta).sum()))


_OPS: dict[int, tuple[Problem, _Ops]] = {}


def _ops_cache(p: Problem) -> _Ops:
    hit = _OPS.get(id(p.i))
    if hit is not None and hit[0].i is p.i and hit[0].pair is p.pair and hit[0].pi is p.pi:
        return hit[1]
    ops = _ops(p)
    _OPS.clear()
    _OPS[id(p.i)] = (p, ops)
    return ops


def _grad_hess_parts(
    p: Problem, ops: _Ops, x: F64, y: F64
) -> tuple[float, F64, F64, F64, F64, F64]:
    """(objective, gradient, pair Laplacian weights, diag of theta block, H_theta_extra
    (K x m), H_extra_extra (m x m))."""
    k = p.k
    theta, t, gamma = _split(p, x)
    d = derivs(p.model, _eta(p, ops, theta, gamma), t, y)
    f = float(d.f.sum() + 0.5 * p.prior * float((theta * theta).sum()))
    g_theta = ops.xt @ d.fe + p.prior * theta
    extra_cols: list[F64] = []
    g_extra: list[float] = []
    if p.has_tie:
        extra_cols.append(d.fet)
        g_extra.append(float(d.ft.sum()))
    if p.z is not None:
        for c in range(p.z.shape[1]):
            extra_cols.append(d.fee * p.z[:, c])
        g_extra += (d.fe @ p.z).tolist()
    m = len(extra_cols)
    h_te = np.zeros((k, m))
    for c, col in enumerate(extra_cols):
        h_te[:, c] = ops.xt @ col
    h_ee = np.zeros((m, m))
    if m:
        base = 0
        if p.has_tie:
            h_ee[0, 0] = float(d.ftt.sum())
            if p.z is not None:
                v = d.fet @ p.z
                h_ee[0, 1:] = v
                h_ee[1:, 0] = v
            base = 1
        if p.z is not None:
            h_ee[base:, base:] = (p.z * d.fee[:, None]).T @ p.z
    d_pair = d.fee if ops.qt is None else ops.qt @ d.fee
    diag = ops.st @ d_pair + p.prior
    g = np.concatenate([g_theta, np.asarray(g_extra, dtype=np.float64)])
    return f, g, np.asarray(d_pair, dtype=np.float64), np.asarray(diag), h_te, h_ee


def _dense_h(p: Problem, d_pair: F64, diag: F64, h_te: F64, h_ee: F64) -> F64:
    k = p.k
    m = h_ee.shape[0]
    h = np.zeros((k + m, k + m))
    h[p.pi, p.pj] -= d_pair
    h[p.pj, p.pi] -= d_pair
    h[np.arange(k), np.arange(k)] += diag
    if p.prior == 0:
        h[:k, :k] += float(diag.mean()) / k
    h[:k, k:] = h_te
    h[k:, :k] = h_te.T
    h[k:, k:] = h_ee
    return h


def hessian(p: Problem, x: F64) -> F64:
    """Dense Hessian of the objective at `x` (gauge-fixed when there is no prior)."""
    ops = _ops_cache(p)
    _, _, d_pair, diag, h_te, h_ee = _grad_hess_parts(p, ops, x, p.y)
    return _dense_h(p, d_pair, diag, h_te, h_ee)


def laplacian_solver(
    p: Problem, ops: _Ops, d_pair: F64, diag: F64, rtol: float, dtype: type = np.float64
) -> Callable[[NDArray[np.floating]], NDArray[np.floating]]:
    """Solve the theta block of the Newton system (a weighted graph Laplacian plus the prior,
    or plus a rank-one gauge term when there is no prior) for one right-hand side or a block
    of them (K x R), by Jacobi-preconditioned conjugate gradients on a sparse matrix."""
    k = p.k
    data: NDArray[np.floating] = (-d_pair[ops.lap_perm]).astype(dtype)
    off = sp.csr_matrix((data, ops.lap_indices, ops.lap_indptr), shape=(k, k))
    shift = float(diag.mean()) / k if p.prior == 0 else 0.0
    dg: NDArray[np.floating] = diag.astype(dtype)
    pre: NDArray[np.floating] = (1.0 / (diag + shift)).astype(dtype)

    def mv(v: NDArray[np.floating]) -> NDArray[np.floating]:
        out = off @ v + (dg * v.T).T
        if shift:
            out = out + dtype(shift) * v.sum(axis=0)
        return np.asarray(out)

    def solve(b: NDArray[np.floating]) -> NDArray[np.floating]:
        return _pcg(mv, b.astype(dtype, copy=False), pre, rtol)

    return solve


def schur_solve(
    solve: Callable[[NDArray[np.floating]], NDArray[np.floating]],
    g: NDArray[np.floating],
    h_te: F64,
    h_ee: F64,
    k: int,
) -> NDArray[np.floating]:
    """Solve the full Newton system for `g` ((K + m,) or (K + m, R)) given a solver of the
    theta block: the m extra parameters (tie, style) by their Schur complement."""
    m = h_ee.shape[0]
    a_g = solve(g[:k])
    if m == 0:
        return a_g
    a_b = np.stack([solve(h_te[:, c]) for c in range(m)], axis=1).astype(a_g.dtype)
    schur = h_ee - h_te.T @ a_b
    de = np.linalg.solve(schur, g[k:] - h_te.T @ a_g).astype(a_g.dtype)
    return np.concatenate([a_g - a_b @ de, de])


def _solve_sparse(
    p: Problem, ops: _Ops, g: F64, d_pair: F64, diag: F64, h_te: F64, h_ee: F64, rtol: float
) -> F64:
    """Newton direction with the Laplacian block solved by Jacobi-preconditioned CG and the
    few extra parameters by a Schur complement."""
    solve = laplacian_solver(p, ops, d_pair, diag, rtol)
    return np.asarray(schur_solve(solve, g, h_te, h_ee, p.k), dtype=np.float64)


def _pcg(
    mv: Callable[[NDArray[np.floating]], NDArray[np.floating]],
    b: NDArray[np.floating],
    pre_d: NDArray[np.floating],
    rtol: float,
    maxiter: int = 5000,
) -> NDArray[np.floating]:
    """Jacobi-preconditioned conjugate gradients for one right-hand side (K,) or a block of
    independent ones (K, R), each column with its own step sizes; stops when every column's
    residual is below `rtol` times its right-hand side. Inner products are plain numpy
    reductions (no BLAS call): on a loaded machine multi-threaded BLAS dot products cost more
    than the sparse matrix-vector products themselves."""
    x = np.zeros_like(b)
    bn = np.sqrt((b * b).sum(axis=0))
    if not np.any(bn > 0):
        return x
    pre = pre_d if b.ndim == 1 else pre_d[:, None]
    r = b.copy()
    zv = pre * r
    d = zv.copy()
    rz = (r * zv).sum(axis=0)
    for _ in range(maxiter):
        ad = mv(d)
        den = (d * ad).sum(axis=0)
        alpha = np.divide(rz, den, out=np.zeros_like(rz), where=den != 0)
        x += alpha * d
        r -= alpha * ad
        if np.all(np.sqrt((r * r).sum(axis=0)) <= rtol * bn):
            break
        zv = pre * r
        rz_new = (r * zv).sum(axis=0)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz != 0)
        d *= beta
        d += zv
        rz = rz_new
    return x


def newton(
    p: Problem, x0: F64 | None = None, y: F64 | None = None, dense: bool | None = None
) -> tuple[F64, int, float]:
    """Minimise the objective from `x0` (default zeros and a moment-matched tie parameter);
    `y` replaces the counts (bootstrap). Returns (x, iterations, objective)."""
    ops = _ops_cache(p)
    yy = p.y if y is None else y
    k, m = p.k, p.n_extra
    if x0 is None:
        x = np.zeros(k + m)
        x[:k] = _theta_init(p, yy)
        if p.has_tie:
            x[k] = tie_param_init(p)
    else:
        x = x0.astype(np.float64, copy=True)
    use_dense = k <= DENSE_MAX if dense is None else dense
    f, g, d_pair, diag, h_te, h_ee = _grad_hess_parts(p, ops, x, yy)
    g0 = float(np.abs(g).max()) or 1.0
    for it in range(1, p.max_iter + 1):
        if use_dense:
            h = _dense_h(p, d_pair, diag, h_te, h_ee)
            step = _dense_step(h, g)
        else:
            rel = float(np.abs(g).max()) / g0
            step = _solve_sparse(
                p, ops, g, d_pair, diag, h_te, h_ee, rtol=min(1e-2, max(1e-13, 1e-3 * rel))
            )
        if p.prior == 0:
            step[:k] -= step[:k].mean()
        if not np.all(np.isfinite(step)) or float((g * step).sum()) <= 0:
            step = g / np.concatenate([np.maximum(diag, 1e-12), np.ones(m)])
        s = 1.0
        for _ in range(60):
            xn = x - s * step
            parts = _grad_hess_parts(p, ops, xn, yy)
            if np.isfinite(parts[0]) and parts[0] <= f + 1e-12 * abs(f):
                break
            s *= 0.5
        x = xn
        done = float(np.abs(s * step).max()) < p.tol
        f, g, d_pair, diag, h_te, h_ee = parts
        if done:
            return _centre(p, x), it, f
    raise RankInputError(
        f"the {p.model} fit did not converge in {p.max_iter} Newton iterations; "
        "try a prior (--prior 0.1)"
    )


def _theta_init(p: Problem, y: F64) -> F64:
    """Starting strengths log((wins + ties/2 + 1) / (losses + ties/2 + 1)), centred: saves
    two or three Newton iterations over starting from 0 on large problems."""
    k = p.k
    w = np.bincount(p.i, y[:, 0], k) + np.bincount(p.j, y[:, 1], k)
    lo = np.bincount(p.i, y[:, 1], k) + np.bincount(p.j, y[:, 0], k)
    t = 0.5 * (np.bincount(p.i, y[:, 2], k) + np.bincount(p.j, y[:, 2], k))
    th = np.log(w + t + 1.0) - np.log(lo + t + 1.0)
    return np.asarray(th - th.mean(), dtype=np.float64)


def _dense_step(h: F64, g: F64) -> F64:
    from scipy.linalg import cho_factor, cho_solve

    try:
        return np.asarray(cho_solve(cho_factor(h), g), dtype=np.float64)
    except np.linalg.LinAlgError:
        lam = 1e-8 * float(np.abs(np.diag(h)).max() or 1.0)
        for _ in range(30):
            try:
                return np.asarray(np.linalg.solve(h + lam * np.eye(h.shape[0]), g))
            except np.linalg.LinAlgError:
                lam *= 10
        return g.copy()


def objective_at(p: Problem, ops: _Ops, x: F64, y: F64) -> float:
    theta, t, gamma = _split(p, x)
    d = derivs(p.model, _eta(p, ops, theta, gamma), t, y)
    return float(d.f.sum() + 0.5 * p.prior * float((theta * theta).sum()))


def _centre(p: Problem, x: F64) -> F64:
    if p.prior == 0:
        x = x.copy()
        x[: p.k] -= x[: p.k].mean()
    return x


def fit_problem(p: Problem) -> Fit:
    x, it, f = newton(p)
    theta, t, gamma = _split(p, x)
    tie = None
    if p.model == "davidson":
        tie = float(np.exp(t))
    elif p.model == "rao-kupper":
        tie = float(np.exp(np.exp(t)))
    centred = theta - theta.mean()
    reg = 0.5 * p.prior * float((theta * theta).sum())
    return Fit(
        p.items, p.model, p.ties, centred, tie, gamma.copy(), p.prior, -(f - reg), it,
        p.notes, p.dropped_items, x,
    )  # fmt: skip


def fit(counts: Counts, config: RankConfig = RankConfig()) -> Fit:
    """Fit `config.model` to aggregated counts (see `prefkit.rank.data.aggregate`)."""
    return fit_problem(problem(counts, config))


def win_probabilities(f: Fit) -> tuple[F64, F64]:
    """(P[row beats column], P[tie]) under the fitted model (no covariates)."""
    d = f.theta[:, None] - f.theta[None, :]
    if f.model == "bt":
        pw = _sigmoid(d)
        pt = np.zeros_like(pw)
    elif f.model == "davidson":
        nu = float(f.tie or 0.0)
        ea, eb = np.exp(0.5 * d), np.exp(-0.5 * d)
        z = ea + eb + nu
        pw, pt = ea / z, nu / z
    else:
        a = float(np.log(f.tie or 1.0))
        pw = _sigmoid(d - a)
        pt = 1.0 - pw - _sigmoid(-d - a)
    np.fill_diagonal(pw, np.nan)
    np.fill_diagonal(pt, np.nan)
    return np.asarray(pw), np.asarray(pt)


class BradleyTerry:
    """Fitted-model wrapper: ``BradleyTerry(RankConfig(...)).fit(counts)`` stores `scores_`
    (log-strengths, mean 0), `fit_` (the `Fit`) and `problem_`."""

    def __init__(self, config: RankConfig = RankConfig()) -> None:
        self.config = config

    def fit(self, counts: Counts) -> BradleyTerry:
        self.problem_ = problem(counts, self.config)
        self.fit_ = fit_problem(self.problem_)
        self.scores_ = dict(zip(self.fit_.items, self.fit_.theta.tolist(), strict=True))
        return self


def with_counts(p: Problem, y3: F64) -> Problem:
    """The same problem with new raw (i wins, j wins, tie) counts (tie policy applied)."""
    return replace(p, y=tie_counts(y3, p.model, p.ties), y3=y3)
