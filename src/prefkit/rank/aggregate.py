"""Aggregation of several annotators' votes on the same pair: a posterior over {a, b, tie}
per pair and a skill estimate per annotator.

Methods (all EM, all accept gold pairs whose answer is known; gold posteriors are fixed to
the known answer at every E-step, which calibrates the annotators against them):

- ``majority``: vote shares.
- ``dawid-skene`` (Dawid & Skene 1979): one full confusion matrix per annotator and learned
  class priors; initialised from majority shares and iterated as in crowd-kit's
  ``DawidSkene`` (clip 1e-10, stop on a small change of the evidence lower bound).
- ``mace`` (Hovy et al. 2013): each annotator answers truthfully with probability
  ``competence`` and otherwise "spams" from an own label distribution (EM with Beta(1, 1)
  and Dirichlet(1) smoothing instead of the paper's variational Bayes).
- ``glad`` (Whitehill et al. 2009): P(correct) = sigmoid(alpha_annotator * beta_pair), wrong
  answers uniform over the other labels, N(1, 1) priors on alpha and log beta.
- ``noisy-bt``: Bradley–Terry–Davidson prior per pair from the models' strengths (fitted on
  the votes), one-coin annotator skill and an annotator position bias (needs model names;
  position bias needs ``shown_first``).

`both_bad` votes count as ties. Position bias reported for every method is the annotator's
share of decisive votes that went to the response shown first, minus 0.5 (null when the
display order was not recorded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.rank.data import RankInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Method = Literal["majority", "dawid-skene", "mace", "glad", "noisy-bt"]
METHODS: tuple[str, ...] = ("majority", "dawid-skene", "mace", "glad", "noisy-bt")
LABELS: tuple[str, ...] = ("a", "b", "tie")
_LABEL = {"a": 0, "b": 1, "tie": 2, "both_bad": 2}
_EPS = 1e-10


@dataclass(frozen=True)
class Votes:
    """Votes as arrays: task (pair) index, annotator index, label 0/1/2 (a, b, tie), and
    which side was shown first (0 = a, 1 = b, -1 unknown)."""

    task: I64
    worker: I64
    label: I64
    first: I64
    n_tasks: int
    workers: tuple[str, ...]


@dataclass(frozen=True)
class Aggregation:
    method: str
    posterior: F64  # (tasks, 3) over a, b, tie
    annotators: dict[str, Any]  # column -> list, one entry per annotator
    iterations: int


def votes_from_arrays(
    task: I64, annotator: list[str | None], outcome: list[str], first: list[str | None]
) -> Votes:
    codes = np.empty(len(outcome), dtype=np.int64)
    for r, o in enumerate(outcome):
        c = _LABEL.get(o)
        if c is None:
            raise RankInputError(
                f"row {r}, field 'outcome': unknown value {o!r}; expected a, b, tie, both_bad"
            )
        codes[r] = c
    names = ["(unknown)" if a is None else str(a) for a in annotator]
    uniq, widx = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    fcode = np.array([0 if f == "a" else 1 if f == "b" else -1 for f in first], dtype=np.int64)
    n_tasks = int(task.max()) + 1 if task.size else 0
    return Votes(
        task.astype(np.int64), widx.astype(np.int64), codes, fcode, n_tasks,
        tuple(str(u) for u in uniq.tolist()),
    )  # fmt: skip


def _shares(v: Votes) -> F64:
    m = np.zeros((v.n_tasks, 3))
    np.add.at(m, (v.task, v.label), 1.0)
    return np.asarray(m / np.maximum(m.sum(axis=1, keepdims=True), 1.0))


def _fix_gold(post: F64, gold: Mapping[int, int] | None) -> F64:
    if gold:
        idx = np.fromiter(gold.keys(), np.int64)
        lab = np.fromiter(gold.values(), np.int64)
        post[idx] = 0.0
        post[idx, lab] = 1.0
    return post


def _normalise_log(lp: F64) -> F64:
    lp = lp - lp.max(axis=1, keepdims=True)
    p = np.exp(lp)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def majority(v: Votes, gold: Mapping[int, int] | None = None) -> tuple[F64, dict[str, Any], int]:
    post = _fix_gold(_shares(v), gold)
    return post, {}, 0


def dawid_skene(
    v: Votes, gold: Mapping[int, int] | None = None, n_iter: int = 100, tol: float = 1e-5
) -> tuple[F64, dict[str, Any], int]:
    w = len(v.workers)
    post = _fix_gold(_shares(v), gold)
    priors = post.mean(axis=0)
    err = _ds_m(v, post, w)
    loss = -np.inf
    it = 0
    for _ in range(n_iter):
        it += 1
        lp = np.log(np.maximum(priors, _EPS))[None, :] + _ds_loglik(v, err)
        post = _fix_gold(_normalise_log(lp), gold)
        priors = post.mean(axis=0)
        err = _ds_m(v, post, w)
        new = _ds_elbo(v, post, priors, err) / max(v.task.size, 1)
        if new - loss < tol:
            break
        loss = new
    acc = np.einsum("c,wcc->w", priors, err.transpose(0, 2, 1))
    return post, {"skill": acc.tolist(), "confusion": err.transpose(0, 2, 1).tolist()}, it


def _ds_m(v: Votes, post: F64, w: int) -> F64:
    """err[w, l, c] = P(annotator w says l | truth c)."""
    e = np.zeros((w, 3, 3))
    np.add.at(e, (v.worker, v.label), post[v.task])
    e = np.maximum(e, _EPS)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _ds_loglik(v: Votes, err: F64) -> F64:
    out = np.zeros((v.n_tasks, 3))
    np.add.at(out, v.task, np.log(err[v.worker, v.label]))
    return out


def _ds_elbo(v: Votes, post: F64, priors: F64, err: F64) -> float:
    ll = float((post[v.task] * np.log(err[v.worker, v.label])).sum())
    ll += float((post * np.log(np.maximum(priors, _EPS))[None, :]).sum())
    ent = -float((post * np.log(np.maximum(post, _EPS))).sum())
    return ll + ent


def mace(
    v: Votes, gold: Mapping[int, int] | None = None, n_iter: int = 200, tol: float = 1e-7
) -> tuple[F64, dict[str, Any], int]:
    w = len(v.workers)
    post = _fix_gold(_shares(v), gold)
    comp, spam = _mace_m(v, post, np.full(w, 0.8), np.full((w, 3), 1.0 / 3.0))
    it = 0
    for _ in range(n_iter):
        it += 1
        # P(label | truth c) for every vote: (votes, 3)
        onehot = np.zeros((v.task.size, 3))
        onehot[np.arange(v.task.size), v.label] = 1.0
        like = (
            comp[v.worker, None] * onehot
            + (1.0 - comp[v.worker, None]) * spam[v.worker, v.label][:, None]
        )
        lp = np.zeros((v.n_tasks, 3))
        np.add.at(lp, v.task, np.log(np.maximum(like, _EPS)))
        new_post = _fix_gold(_normalise_log(lp), gold)
        comp, spam = _mace_m(v, new_post, comp, spam)
        delta = float(np.abs(new_post - post).max())
        post = new_post
        if delta < tol:
            break
    return post, {"skill": comp.tolist(), "spam_distribution": spam.tolist()}, it


def _mace_m(v: Votes, post: F64, comp: F64, spam: F64) -> tuple[F64, F64]:
    """MACE M-step from the posteriors: expected truthful answers per annotator."""
    w = comp.size
    q = comp[v.worker]
    p_l = spam[v.worker, v.label]
    pc = post[v.task, v.label]  # P(truth = the label given)
    like = pc * (q + (1.0 - q) * p_l) + (1.0 - pc) * (1.0 - q) * p_l
    truthful = pc * q / np.maximum(like, _EPS)
    n_w = np.bincount(v.worker, minlength=w).astype(np.float64)
    new_comp = (np.bincount(v.worker, truthful, w) + 1.0) / (n_w + 2.0)
    sp_counts = np.ones((w, 3))
    np.add.at(sp_counts, (v.worker, v.label), 1.0 - truthful)
    return new_comp, sp_counts / sp_counts.sum(axis=1, keepdims=True)


def glad(
    v: Votes, gold: Mapping[int, int] | None = None, n_iter: int = 200, tol: float = 1e-7
) -> tuple[F64, dict[str, Any], int]:
    w = len(v.workers)
    post = _fix_gold(_shares(v), gold)
    priors = np.full(3, 1.0 / 3.0)
    alpha = np.ones(w)
    logb = np.ones(v.n_tasks)
    it = 0
    for _ in range(n_iter):
        it += 1
        # M-step: a few diagonal Newton steps on alpha and log beta
        pc = post[v.task, v.label]  # P(vote correct)
        for _ in range(5):
            beta = np.exp(logb)
            x = alpha[v.worker] * beta[v.task]
            s = 1.0 / (1.0 + np.exp(-x))
            r = pc - s
            ga = np.bincount(v.worker, r * beta[v.task], w) - (alpha - 1.0)
            ha = np.bincount(v.worker, s * (1 - s) * beta[v.task] ** 2, w) + 1.0
            alpha = alpha + ga / ha
            x = alpha[v.worker] * beta[v.task]
            s = 1.0 / (1.0 + np.exp(-x))
            r = pc - s
            gb = np.bincount(v.task, r * x, v.n_tasks) - (logb - 1.0)
            hb = np.bincount(v.task, s * (1 - s) * x * x - r * x, v.n_tasks) + 1.0
            logb = logb + gb / np.maximum(hb, 1e-3)
            logb = np.clip(logb, -10.0, 10.0)
        priors = np.maximum(post.mean(axis=0), _EPS)
        # E-step
        beta = np.exp(logb)
        x = alpha[v.worker] * beta[v.task]
        lc = -np.logaddexp(0.0, -x)  # log P(correct)
        lw = -np.logaddexp(0.0, x) - np.log(2.0)  # log P(a given wrong label)
        lp = np.tile(np.log(priors), (v.n_tasks, 1))
        contrib = np.repeat(lw[:, None], 3, axis=1)
        contrib[np.arange(v.task.size), v.label] = lc
        np.add.at(lp, v.task, contrib)
        new_post = _fix_gold(_normalise_log(lp), gold)
        delta = float(np.abs(new_post - post).max())
        post = new_post
        if delta < tol:
            break
    return post, {"skill": alpha.tolist()}, it


def noisy_bt(
    v: Votes,
    model_a: I64,
    model_b: I64,
    n_models: int,
    gold: Mapping[int, int] | None = None,
    n_iter: int = 100,
    tol: float = 1e-7,
) -> tuple[F64, dict[str, Any], int]:
    """Task prior from a Davidson model on the pair's models (refitted on the posteriors),
    annotators with one-coin skill q (answer the truth with probability q, else uniform) and
    a position bias (log-odds toward the response shown first on decisive answers)."""
    from prefkit.rank.bt import RankConfig, build_problem, fit_problem

    w = len(v.workers)
    post = _fix_gold(_shares(v), gold)
    skill = np.full(w, 0.7)
    bias = np.zeros(w)
    prior = np.tile(post.mean(axis=0), (v.n_tasks, 1))
    known = (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
    it = 0
    for _ in range(n_iter):
        it += 1
        # prior per task: Davidson fitted to the current posteriors (soft counts)
        if known.sum() and n_models >= 2:
            y3 = post[known]
            lo = np.minimum(model_a[known], model_b[known])
            hi = np.maximum(model_a[known], model_b[known])
            sw = model_a[known] > model_b[known]
            y3 = np.where(sw[:, None], y3[:, [1, 0, 2]], y3)
            key = lo * n_models + hi
            uniq, inv = np.unique(key, return_inverse=True)
            agg = np.zeros((uniq.size, 3))
            np.add.at(agg, inv, y3)
            try:
                p = build_problem(
                    tuple(str(q) for q in range(n_models)),
                    (uniq // n_models).astype(np.int64), (uniq % n_models).astype(np.int64),
                    agg, np.ones((uniq.size, 3), dtype=np.int64), np.ones((uniq.size, 3)),
                    np.arange(uniq.size, dtype=np.int64),
                    (uniq // n_models).astype(np.int64), (uniq % n_models).astype(np.int64),
                    None, RankConfig(model="davidson", prior=0.1, components="largest"),
                )  # fmt: skip
                f = fit_problem(p)
                theta = np.zeros(n_models)
                idx = np.array([int(s) for s in f.items], dtype=np.int64)
                theta[idx] = f.theta
                d = theta[model_a[known]] - theta[model_b[known]]
                nu = float(f.tie or 0.0)
                ea, eb = np.exp(0.5 * d), np.exp(-0.5 * d)
                z = ea + eb + nu
                prior[known] = np.stack([ea / z, eb / z, np.full_like(z, nu) / z], axis=1)
            except RankInputError:
                pass
        # annotator likelihood of each vote for each truth
        lik = np.empty((v.task.size, 3))
        q = skill[v.worker]
        for c in range(3):
            base = np.where(v.label == c, q, (1.0 - q) / 2.0)
            lik[:, c] = base
        # position bias: tilt decisive answers toward the first-shown side
        has = v.first >= 0
        dec = has & (v.label < 2)
        to_first = dec & (v.label == v.first)
        tilt = np.ones(v.task.size)
        e = np.exp(bias[v.worker])
        tilt[to_first] = 2.0 * e[to_first] / (1.0 + e[to_first])
        tilt[dec & ~to_first] = 2.0 / (1.0 + e[dec & ~to_first])
        lik = lik * tilt[:, None]
        lp = np.log(np.maximum(prior, _EPS))
        np.add.at(lp, v.task, np.log(np.maximum(lik, _EPS)))
        new_post = _fix_gold(_normalise_log(lp), gold)
        pc = new_post[v.task, v.label]
        n_w = np.bincount(v.worker, minlength=w).astype(np.float64)
        skill = np.clip((np.bincount(v.worker, pc, w) + 1.0) / (n_w + 2.0), 0.34, 0.999)
        nf = np.bincount(v.worker[dec], to_first[dec].astype(np.float64), w) + 1.0
        nd = np.bincount(v.worker[dec], minlength=w).astype(np.float64) + 2.0
        bias = np.log(nf / (nd - nf))
        delta = float(np.abs(new_post - post).max())
        post = new_post
        if delta < tol:
            break
    return post, {"skill": skill.tolist(), "position_logit": bias.tolist()}, it


def position_bias(v: Votes) -> list[float | None]:
    out: list[float | None] = []
    for w in range(len(v.workers)):
        m = (v.worker == w) & (v.first >= 0) & (v.label < 2)
        n = int(m.sum())
        out.append(float((v.label[m] == v.first[m]).mean() - 0.5) if n else None)
    return out


def aggregate_votes(
    v: Votes,
    method: Method = "dawid-skene",
    gold: Mapping[int, int] | None = None,
    model_a: I64 | None = None,
    model_b: I64 | None = None,
    n_models: int = 0,
) -> Aggregation:
    """Posteriors and annotator table for `method` (see module docstring); `model_a`/
    `model_b`: per task model codes (-1 unknown) for noisy-bt."""
    if method not in METHODS:
        raise RankInputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if v.task.size == 0:
        raise RankInputError("no votes to aggregate")
    if method == "majority":
        post, extra, it = majority(v, gold)
    elif method == "dawid-skene":
        post, extra, it = dawid_skene(v, gold)
    elif method == "mace":
        post, extra, it = mace(v, gold)
    elif method == "glad":
        post, extra, it = glad(v, gold)
    else:
        if model_a is None or model_b is None:
            raise RankInputError("noisy-bt needs model names (model_a/model_b)")
        post, extra, it = noisy_bt(v, model_a, model_b, n_models, gold)
    label = post.argmax(axis=1)
    agree = (label[v.task] == v.label).astype(np.float64)
    w = len(v.workers)
    n_w = np.bincount(v.worker, minlength=w)
    ann: dict[str, Any] = {
        "annotator": list(v.workers),
        "n_votes": n_w.tolist(),
        "agreement": (np.bincount(v.worker, agree, w) / np.maximum(n_w, 1)).tolist(),
        "position_bias": position_bias(v),
    }
    if method == "majority":
        ann["skill"] = ann["agreement"]
    ann.update(extra)
    return Aggregation(method, post, ann, it)


class Aggregator:
    """A fitted-annotator `VoteModel` for `prefkit.build.pairs_from_votes(method=...)`:
    ``pairs_from_votes(table, method=Aggregator("dawid-skene"))``."""

    def __init__(self, method: Method = "dawid-skene") -> None:
        self.method = method
        self.name = method

    def posteriors(self, votes: pa.Table, group: I64) -> F64:
        v = votes_from_arrays(
            np.asarray(group, dtype=np.int64),
            votes.column("annotator").to_pylist(),
            votes.column("outcome").to_pylist(),
            votes.column("shown_first").to_pylist()
            if "shown_first" in votes.column_names
            else [None] * votes.num_rows,
        )
        g = np.asarray(group, dtype=np.int64)
        heads = np.full(int(g.max()) + 1 if g.size else 0, -1, dtype=np.int64)
        heads[g[::-1]] = np.arange(g.size - 1, -1, -1)
        mi, mb, k = _model_codes(votes.take(pa.array(heads)))
        agg = aggregate_votes(v, self.method, model_a=mi, model_b=mb, n_models=k)
        self.aggregation_ = agg
        out = np.zeros((agg.posterior.shape[0], 4))
        out[:, :3] = agg.posterior
        return out


def _model_codes(t: pa.Table) -> tuple[I64, I64, int]:
    a = ["" if x is None else str(x) for x in t.column("model_a").to_pylist()]
    b = ["" if x is None else str(x) for x in t.column("model_b").to_pylist()]
    names = sorted({x for x in a + b if x})
    idx = {s: q for q, s in enumerate(names)}
    ma = np.array([idx.get(x, -1) for x in a], dtype=np.int64)
    mb = np.array([idx.get(x, -1) for x in b], dtype=np.int64)
    return ma, mb, len(names)


def aggregate_table(
    table: pa.Table, method: Method = "dawid-skene", gold: Mapping[str, str] | None = None
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Canonical comparisons (several votes per pair) -> (one row per pair with the
    aggregated outcome, `strength` = P(a) + P(tie)/2 and the posterior in meta; the
    annotators table; a summary). `gold`: pair id (meta.pair_id, else the first vote's id)
    -> known outcome, relative to that pair's first vote."""
    from prefkit.build.pairs import orient, vote_groups
    from prefkit.schema import Kind, conform

    if table.num_rows == 0:
        raise RankInputError("no votes to aggregate (empty table)")
    gidx, flipped, groups = vote_groups(table)
    votes = orient(table, flipped)
    first = (
        votes.column("shown_first").to_pylist()
        if "shown_first" in votes.column_names
        else [None] * votes.num_rows
    )
    v = votes_from_arrays(
        gidx, votes.column("annotator").to_pylist(), votes.column("outcome").to_pylist(), first
    )
    heads = [g[0] for g in groups]
    head = votes.take(pa.array(heads, pa.int64()))
    metas = head.column("meta").to_pylist() if "meta" in head.column_names else [None] * len(heads)
    ids = head.column("id").to_pylist()
    keys = []
    for m, i in zip(metas, ids, strict=True):
        d = dict(m) if m else {}
        keys.append(str(d.get("pair_id", i)))
    gold_idx: dict[int, int] = {}
    unknown_gold: list[str] = []
    if gold:
        where = {k: t for t, k in enumerate(keys)}
        for k, o in gold.items():
            if o not in _LABEL:
                raise RankInputError(f"gold pair {k!r}: unknown outcome {o!r}")
            if k in where:
                gold_idx[where[k]] = _LABEL[o]
            else:
                unknown_gold.append(k)
    mi, mb, nm = _model_codes(head)
    agg = aggregate_votes(v, method, gold_idx, mi, mb, nm)
    post = agg.posterior
    label = post.argmax(axis=1)
    n_votes = np.bincount(gidx, minlength=len(groups))
    meta_out = []
    for t, (m, k) in enumerate(zip(metas, keys, strict=True)):
        d = dict(m) if m else {}
        d.update(
            {
                "pair_id": k,
                "n_votes": str(int(n_votes[t])),
                "posterior_a": f"{post[t, 0]:.6f}",
                "posterior_b": f"{post[t, 1]:.6f}",
                "posterior_tie": f"{post[t, 2]:.6f}",
                "aggregate_method": method,
            }
        )
        if t in gold_idx:
            d["gold"] = LABELS[gold_idx[t]]
        meta_out.append(list(d.items()))
    cols: dict[str, Any] = {}
    for name in head.column_names:
        cols[name] = head.column(name)
    cols["id"] = pa.array([f"agg:{k}" for k in keys], pa.string())
    cols["annotator"] = pa.array([f"aggregate:{method}"] * len(keys), pa.string())
    cols["outcome"] = pa.array([LABELS[c] for c in label.tolist()], pa.string())
    cols["strength"] = pa.array((post[:, 0] + 0.5 * post[:, 2]).tolist(), pa.float64())
    cols["meta"] = pa.array(meta_out, pa.map_(pa.string(), pa.string()))
    if "shown_first" in cols:
        cols["shown_first"] = pa.nulls(len(keys), pa.string())
    out = conform(pa.table(cols), Kind.COMPARISONS)
    ann = pa.table(
        {
            k: pa.array(vals)
            if k != "confusion"
            else pa.array(vals, pa.list_(pa.list_(pa.float64())))
            for k, vals in agg.annotators.items()
        }
    )
    summary = {
        "method": method,
        "votes": int(v.task.size),
        "pairs": len(groups),
        "annotators": len(v.workers),
        "iterations": agg.iterations,
        "gold_pairs": len(gold_idx),
        "gold_unmatched": unknown_gold,
        "outcomes": {lab: int((label == c).sum()) for c, lab in enumerate(LABELS)},
        "mean_posterior_max": float(post.max(axis=1).mean()),
    }
    return out, ann, summary
