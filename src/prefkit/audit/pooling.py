"""Pooling the votes of a response that recurs within a prompt (the label-noise prior).

In many real sets the same response text is judged in several pairs of one prompt: PandaLM
compares each prompt's answers from several models pairwise (98% of its pairs share a
response with another pair of the prompt), FineGrained's rankings of four answers become
six comparisons (100%). There the other pairs' votes say how good each response is, and a
flipped vote contradicts the order they imply (a ranking a > b > c with b > a recorded), which
the text feature model alone cannot see. `pooled_logit` corrects the feature prior with a
per-prompt Bradley–Terry model over the prompt's distinct responses, shrunk to the prior: a
response's utility = the prior's + u_r with u_r ~ N(0, τ²), a pair's term is u_a − u_b, fitted
out of fold (the check's pair folds: a pair's own votes never vouch for it) by ridge
regression of the other pairs' votes-only posterior margins on their prior logit (a
Gaussian GP with the kernel "same response text: τ², else 0"). All prompts at once, one sparse
solve per fold.

When it is on (`recurrence_share` ≥ `MIN_RECURRENCE`, 0.5): when at least half of the pairs
share a response with another pair of the same prompt. Chosen on development data (the
simulator's `noisy` seeds 10–29 and the shared real sets, never the test seeds 0–9): `noisy`
0.086–0.141 (there two identical texts are separate draws with their own idiosyncratic
utility, and pooling lowered P@R0.6 on 14 of 20 seeds), HH 0, LLMBar 0.17, ICAI 0.25 (one
or a few pairs per prompt: little to pool), PandaLM 0.98 and FineGrained 1.00 (pooling raised
PandaLM's precision and recall on 5 of 5 seeds). Any level between 0.25 and 0.98 separates
these sets; 0.5 — "most pairs hold a recurring response" — is the middle of the gap, not a
tuned value. Below it the prior is untouched. And only with several votes per pair (the check
fits the votes-only lapse model, whose per-pair margins are the targets): with one vote per
pair the lapse rate is not identifiable, and on FineGrained (one vote per pair, injection
seeds 10–14, development) pooling raised P@R0.5 from 0.28 to 0.33 but the default flags'
precision fell from 0.53 to 0.39 and their false-alarm rate rose from 1.2% to 6.0% (target
≤ 5%): the scores were no longer calibrated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from prefkit.audit.features import F64
from prefkit.audit.frame import Frame, combine_codes
from prefkit.audit.stats import LapseModel

I64 = NDArray[np.int64]
TAU2 = 0.3  # prior variance of a response's utility beyond the feature model (logit units)
MIN_RECURRENCE = 0.5
SINGLE_VOTE = False  # pool with one vote per pair too (off: see above; for benchmarks)


def response_keys(prompt: I64, a: I64, b: I64) -> tuple[I64, I64]:
    """One compact key per (prompt, response text) for each pair's two responses."""
    n = prompt.size
    key = combine_codes(np.concatenate([prompt, prompt]), np.concatenate([a, b]))
    return key[:n], key[n:]


def recurrence_share(prompt: I64, a: I64, b: I64) -> float:
    """Share of the pairs (one entry per pair) holding a response that appears in another
    pair of the same prompt."""
    n = prompt.size
    if n == 0:
        return 0.0
    ka, kb = response_keys(prompt, a, b)
    # each pair counts a response once (a pair of two identical texts is not recurrence)
    keys = np.concatenate([ka, kb[kb != ka]])
    pairs = np.bincount(keys, minlength=int(max(ka.max(), kb.max())) + 1)
    return float(((pairs[ka] >= 2) | (pairs[kb] >= 2)).mean())


def pooled_logit(prompt: I64, a: I64, b: I64, fold: I64, z: F64, y: F64, tau2: float = TAU2) -> F64:
    """The prior logit per pair corrected by the pooled votes of its responses (module
    docstring). Per pair: `prompt`, response codes `a`, `b` (the orientation of `z` and `y`),
    `fold`, the prior logit `z` and the votes-only posterior mean margin `y`. `z` is first
    recalibrated (least squares of `y` on [1, z]); each fold's pairs then get
    u_a − u_b from the ridge fit on the other folds' residuals y − z."""
    from scipy.sparse import csc_matrix, identity
    from scipy.sparse.linalg import spsolve

    n = z.size
    x1 = np.column_stack([np.ones(n), z])
    z1 = np.asarray(x1 @ np.linalg.lstsq(x1, y, rcond=None)[0], dtype=np.float64)
    ka, kb = response_keys(prompt, a, b)
    m = int(max(ka.max(initial=-1), kb.max(initial=-1))) + 1
    out = np.zeros(n)
    r = y - z1
    ridge = identity(m, format="csc") / tau2
    for k in np.unique(fold).tolist():
        tr = np.flatnonzero((fold != k) & (ka != kb))
        te = np.flatnonzero(fold == k)
        if tr.size == 0 or te.size == 0:
            continue
        rows = np.concatenate([np.arange(tr.size), np.arange(tr.size)])
        d = csc_matrix(
            (np.concatenate([np.ones(tr.size), -np.ones(tr.size)]),
             (rows, np.concatenate([ka[tr], kb[tr]]))),
            shape=(tr.size, m),
        )  # fmt: skip
        u = np.asarray(spsolve((d.T @ d + ridge).tocsc(), d.T @ r[tr]), dtype=np.float64)
        out[te] = u[ka[te]] - u[kb[te]]
    return np.asarray(z1 + out, dtype=np.float64)


def pool_prior(
    f: Frame,
    rows: I64,
    it: I64,
    n_it: int,
    fold_of: I64,
    qrow: F64,
    votes_only: Callable[[], LapseModel],
    several: bool,
) -> tuple[float, F64 | None]:
    """The noise check's hook: the recurrence share of its pairs (`it`: pair index of each
    of its `rows`, `n_it` pairs) and, when it reaches `MIN_RECURRENCE` and the pairs have
    `several` votes (or `SINGLE_VOTE`), the pooled prior P(a is better) per pair in the
    canonical orientation (else None). `qrow`: the feature prior per pair; `votes_only`: the
    lapse model on the votes alone (called only when pooling is on)."""
    from scipy.special import expit, logit

    if not f.has_text or n_it == 0:
        return 0.0, None
    first = np.zeros(n_it, dtype=np.int64)
    first[it[::-1]] = rows[::-1]
    prompt = f.prompt_code[first]
    lo = np.minimum(f.a_code, f.b_code)[first]
    hi = np.maximum(f.a_code, f.b_code)[first]
    share = recurrence_share(prompt, lo, hi)
    if share < MIN_RECURRENCE or not (several or SINGLE_VOTE):
        return share, None
    alone = votes_only()
    y = (
        alone.margin
        if alone.margin is not None
        else logit(np.clip(alone.posterior_a, 1e-6, 1 - 1e-6))
    )
    z = logit(np.clip(qrow, 1e-6, 1 - 1e-6))
    pooled = pooled_logit(prompt, lo, hi, fold_of[first], z, np.asarray(y, dtype=np.float64), TAU2)
    return share, np.asarray(expit(pooled), dtype=np.float64)
