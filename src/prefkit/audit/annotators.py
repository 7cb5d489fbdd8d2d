"""Who should not be trusted? Per annotator: volume, agreement with the leave-one-out
consensus (the majority of the *other* votes on the same pair), estimated accuracy (one-coin
Dawid–Skene with the feature-model prior, see noise.py), agreement with the out-of-fold feature
model, and biases: share of `a` (always-A), share of shown-first chosen (position), share of
the longer response chosen (verbosity).

Spammer rule (issue `spammer`, warning, score = 1 − agreement), for annotators with ≥ 20 votes:

1. votes like a coin: decisive agreement is not significantly above chance,
   `z = (agreement − 0.5) / sqrt(0.25 / n) < 2`, or is more likely under a coin than under
   the median annotator's agreement p̃ (binomial log-likelihood ratio
   `k log(½/p̃) + (n − k) log(½/(1 − p̃)) > 0`), where agreement is the share of the
   annotator's a/b votes that side with the majority of the *other* a/b votes on the same
   pair (needs ≥ 20 such votes; otherwise agreement with the out-of-fold feature model) —
   **and** never answers `tie`/`both_bad` although the rest of the data does often enough
   that this is unlikely by chance (`(1 − share)^votes < 0.05`) — **and** the choices are
   not explained by display position (|z| of P(shown first wins) − 0.5 below 3); or
2. one-sided: ≥ 95% of decisive votes for the same side (`a`, `b` or the shown-first one)
   while the whole dataset is below 75%.

Annotators that vote like a coin but do use tie/both_bad are listed as `unreliable` in the
summary (not flagged as spammers): they read the pairs but their labels carry little signal.
Every vote of a spammer is flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.audit.agreement import Votes
from prefkit.audit.findings import Findings, make_rows
from prefkit.audit.frame import Frame
from prefkit.audit.noise import NoiseModel

CHECK = "annotators"
F64 = NDArray[np.float64]
MIN_VOTES = 20
Z_CHANCE = 2.0


def _rate(num: NDArray[Any], den: NDArray[Any]) -> F64:
    out: F64 = np.divide(num.astype(np.float64), den, out=np.full(num.shape, np.nan), where=den > 0)
    return out


def find_annotators(
    f: Frame, v: Votes, model: NoiseModel | None = None, p_a: F64 | None = None
) -> Findings:
    """Per-annotator statistics and the spammer rule. `model` (or just its out-of-fold
    P(a wins), `p_a`) supplies the feature-model agreement and accuracy estimates."""
    na = len(f.annotators)
    if model is not None:
        p_a = model.p_a
    if p_a is None:
        p_a = np.full(f.n, 0.5)
    summary: dict[str, Any] = {"annotators": na}
    if na == 0:
        summary["note"] = "no annotator column"
        return Findings(CHECK, summary=summary)
    known = f.annotator >= 0
    ann = f.annotator[known]
    vol = np.bincount(ann, minlength=na).astype(np.float64)
    d = f.decisive[known]
    out = f.outcome[known]
    dec = np.bincount(ann, weights=d.astype(float), minlength=na)
    a_rate = _rate(np.bincount(ann, weights=(out == 0).astype(float), minlength=na), dec)
    sf = f.shown_first[known]
    sfd = d & (sf >= 0)
    first_rate = _rate(
        np.bincount(ann, weights=(sfd & (out == sf)).astype(float), minlength=na),
        np.bincount(ann, weights=sfd.astype(float), minlength=na),
    )
    la, lb = f.len_a[known], f.len_b[known]
    ld = d & (la != lb)
    longer_rate = _rate(
        np.bincount(ann, weights=(ld & ((out == 0) == (la > lb))).astype(float), minlength=na),
        np.bincount(ann, weights=ld.astype(float), minlength=na),
    )
    pa = p_a[known]
    model_agree = _rate(
        np.bincount(ann, weights=(d & ((pa > 0.5) == (out == 0))).astype(float), minlength=na), dec
    )
    # leave-one-out consensus on items with >= 3 votes
    loo_hit: F64 = np.zeros(na)
    loo_n: F64 = np.zeros(na)
    if v.n_items:
        others = v.counts[v.item].copy()
        others[np.arange(v.item.size), v.label] -= 1
        top = others.max(1)
        unique_top = (others == top[:, None]).sum(1) == 1
        usable = (others.sum(1) >= 2) & unique_top & (v.annotator >= 0)
        agree = others.argmax(1) == v.label
        loo_hit = np.bincount(
            v.annotator[usable], weights=agree[usable].astype(float), minlength=na
        ).astype(np.float64)
        loo_n = np.bincount(v.annotator[usable], minlength=na).astype(np.float64)
    loo = _rate(loo_hit, loo_n)
    overlap = (
        np.bincount(v.annotator[v.annotator >= 0], minlength=na) if v.n_items else np.zeros(na)
    )
    acc = model.consensus.accuracy[:na] if model is not None else np.full(na, np.nan)
    # decisive agreement: a/b votes against the others' decisive majority on the same pair
    dec_hit = np.zeros(na)
    dec_n = np.zeros(na)
    if v.n_items:
        ca = v.counts[v.item, 0] - (v.label == 0)
        cb = v.counts[v.item, 1] - (v.label == 1)
        ok = (v.label <= 1) & (ca != cb) & (v.annotator >= 0)
        side = np.where(ca > cb, 0, 1)
        dec_hit = np.bincount(
            v.annotator[ok], weights=(side == v.label)[ok].astype(float), minlength=na
        ).astype(np.float64)
        dec_n = np.bincount(v.annotator[ok], minlength=na).astype(np.float64)
    use_overlap = dec_n >= MIN_VOTES
    agree = np.where(use_overlap, _rate(dec_hit, dec_n), model_agree)
    n_agree = np.where(use_overlap, dec_n, dec)
    z = (agree - 0.5) / np.sqrt(0.25 / np.maximum(n_agree, 1))
    # closer to a coin than to a typical annotator: binomial log-likelihood ratio of the
    # agreements under p = 1/2 vs p = the median agreement of annotators with enough votes
    enough = (vol >= MIN_VOTES) & np.isfinite(agree)
    typical = float(np.clip(np.median(agree[enough]), 0.55, 0.99)) if enough.any() else 0.99
    k_hit = np.nan_to_num(agree, nan=0.5) * n_agree
    llr = k_hit * np.log(0.5 / typical) + (n_agree - k_hit) * np.log(0.5 / (1 - typical))
    near_chance = (vol >= MIN_VOTES) & ((np.nan_to_num(z, nan=0.0) < Z_CHANCE) | (llr > 0))
    # non-decisive answers (tie / both_bad) the annotator would give if they read the pairs
    nd_rate = float((~f.decisive).mean()) if f.n else 0.0
    nd_own = np.bincount(ann, weights=(~d).astype(float), minlength=na)
    never_nd = (nd_own == 0) & ((1 - nd_rate) ** vol < 0.05)
    flag = np.zeros(na, dtype=bool)
    reason = np.full(na, "", dtype=object)
    from prefkit.audit.bias import position_biased

    pos_biased = position_biased(f)
    hit = near_chance & never_nd & ~pos_biased
    flag |= hit
    reason[hit] = [
        f"agreement {a:.2f} on {int(m)} votes is not above chance (z {zz:.1f} < {Z_CHANCE}) "
        f"and never answers tie/both_bad ({nd_rate:.0%} of all votes do)"
        for a, m, zz in zip(agree[hit], n_agree[hit], z[hit], strict=True)
    ]
    unreliable = near_chance & ~flag
    overall_a = float((f.outcome[f.decisive] == 0).mean()) if f.decisive.any() else 0.5
    overall_first = (
        float((f.outcome == f.shown_first)[f.decisive & (f.shown_first >= 0)].mean())
        if (f.decisive & (f.shown_first >= 0)).any()
        else 0.5
    )
    bigd = dec >= MIN_VOTES
    for rate, overall, what in (
        (a_rate, overall_a, "always a"),
        (1 - a_rate, 1 - overall_a, "always b"),
        (first_rate, overall_first, "always the shown-first response"),
    ):
        if overall < 0.75:
            hit = bigd & (np.nan_to_num(rate) >= 0.95) & ~flag
            flag |= hit
            reason[hit] = what
    per = []
    order = np.argsort(-vol)
    for r in order[:1000]:
        per.append(
            {
                "annotator": f.annotators[r],
                "votes": int(vol[r]),
                "overlap_votes": int(overlap[r]),
                "loo_agreement": None if np.isnan(loo[r]) else float(loo[r]),
                "accuracy": None if np.isnan(acc[r]) else float(acc[r]),
                "decisive_agreement": None if np.isnan(agree[r]) else float(agree[r]),
                "model_agreement": None if np.isnan(model_agree[r]) else float(model_agree[r]),
                "a_rate": None if np.isnan(a_rate[r]) else float(a_rate[r]),
                "first_rate": None if np.isnan(first_rate[r]) else float(first_rate[r]),
                "longer_rate": None if np.isnan(longer_rate[r]) else float(longer_rate[r]),
                "spammer": bool(flag[r]),
                "unreliable": bool(unreliable[r]),
                "reason": reason[r] or None,
            }
        )
    summary["per_annotator"] = per
    summary["spammers"] = [f.annotators[r] for r in np.flatnonzero(flag)]
    summary["unreliable"] = [f.annotators[r] for r in np.flatnonzero(unreliable)]
    summary["position_biased"] = [f.annotators[r] for r in np.flatnonzero(pos_biased)]
    summary["rule"] = (
        "≥ 20 votes and either (decisive agreement not above chance, z < 2, and never "
        "tie/both_bad, and not position-driven) or ≥ 95% of decisive votes for one side"
    )
    rows_idx = np.flatnonzero(known)[flag[ann]]
    sc = 1.0 - agree[f.annotator[rows_idx]]
    rows = make_rows(
        CHECK,
        "spammer",
        f.take_ids(rows_idx),
        np.nan_to_num(sc, nan=0.5),
        "warning",
        [f"annotator {f.annotators[a]}: {reason[a]}" for a in f.annotator[rows_idx]],
        group=[f.annotators[a] for a in f.annotator[rows_idx]],
    )
    summary["rows_flagged"] = int(rows.num_rows)
    return Findings(CHECK, rows, summary)
