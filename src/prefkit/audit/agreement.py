"""Do the annotators agree? Where several judgments exist for the same pair (same
`meta.pair_id`, else the same prompt and responses): raw agreement, Fleiss' κ, pairwise Cohen's
κ (their mean is Light's κ; with two annotators it is Cohen's κ), Krippendorff's α (nominal,
computed by the `krippendorff` package) and per-item entropy. Ties and both-bad are categories
of their own, never dropped.

Issue (check `agreement`): `disputed_item` (info, score = normalized entropy) for the rows of
items whose votes are split with no majority (normalized entropy ≥ 0.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.audit.findings import Findings, make_rows
from prefkit.audit.frame import OUTCOME_NAMES, Frame

CHECK = "agreement"
K = len(OUTCOME_NAMES)
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Votes:
    """Votes on items judged more than once."""

    rows: I64  # row index of each vote
    item: I64  # compact item index 0..n_items-1
    label: I64  # 0 a, 1 b, 2 tie, 3 both_bad (pair-aligned)
    annotator: I64  # -1 unknown
    counts: F64  # n_items x K
    n_items: int


def votes(f: Frame, min_votes: int = 2) -> Votes:
    """The votes on items judged at least `min_votes` times. An exact-duplicate copy of a
    row (`Frame.is_copy`) is not a vote; votes by unknown annotators are votes."""
    vote = ~f.is_copy
    item = np.where(vote, f.item, -1)
    uniq, inv, cnt = np.unique(item, return_inverse=True, return_counts=True)
    keep = (cnt[inv] >= min_votes) & vote
    rows = np.flatnonzero(keep)
    _, it = np.unique(inv[rows], return_inverse=True)
    it = it.astype(np.int64)
    label = f.canonical_outcome[rows].astype(np.int64)
    n_items = int(it.max()) + 1 if it.size else 0
    counts = np.zeros((n_items, K))
    np.add.at(counts, (it, label), 1.0)
    return Votes(rows, it, label, f.annotator[rows], counts, n_items)


def fleiss_kappa(counts: F64) -> float:
    """Fleiss' κ from an items x categories count table (items may have different n)."""
    n = counts.sum(1)
    ok = n >= 2
    c, n = counts[ok], n[ok]
    if c.shape[0] == 0:
        return float("nan")
    p_i = ((c * c).sum(1) - n) / (n * (n - 1))
    p_bar = float(p_i.mean())
    p_j = c.sum(0) / c.sum()
    pe = float((p_j * p_j).sum())
    return (p_bar - pe) / (1 - pe) if pe < 1 else float("nan")


def item_agreement(counts: F64) -> F64:
    """Share of agreeing vote pairs of each item judged at least twice."""
    n = counts.sum(1)
    ok = n >= 2
    c, n = counts[ok], n[ok]
    return np.asarray(((c * (c - 1)).sum(1)) / (n * (n - 1)), dtype=np.float64)


def raw_agreement(counts: F64) -> float:
    """Mean share of agreeing vote pairs per item."""
    a = item_agreement(counts)
    return float(a.mean()) if a.size else float("nan")


def krippendorff_alpha(counts: F64) -> float:
    import krippendorff

    ok = counts.sum(1) >= 2
    if ok.sum() < 1 or np.count_nonzero(counts[ok].sum(0)) < 2:
        return float("nan")
    return float(krippendorff.alpha(value_counts=counts[ok], level_of_measurement="nominal"))


def entropy(counts: F64) -> F64:
    """Normalized entropy of each item's vote distribution (0 unanimous .. 1 evenly split)."""
    n = counts.sum(1, keepdims=True)
    p = np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(1)
    kmax = np.log(np.minimum(n[:, 0], K).clip(2, None))
    return np.asarray(h / kmax, dtype=np.float64)


def pairwise(v: Votes, n_annotators: int, max_per_item: int = 10) -> dict[str, Any]:
    """Pairwise raw agreement and Cohen's κ between annotators sharing items."""
    keep = v.annotator >= 0
    item, lab, ann = v.item[keep], v.label[keep], v.annotator[keep]
    order = np.lexsort((ann, item))
    item, lab, ann = item[order], lab[order], ann[order]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    sizes = np.diff(np.r_[starts, item.size])
    i1: list[I64] = []
    i2: list[I64] = []
    top = int(min(sizes.max(initial=0), max_per_item))
    for b in range(1, top):
        sel = starts[sizes > b]
        for a in range(b):
            i1.append(sel + a)
            i2.append(sel + b)
    if not i1:
        return {"annotators": [], "agreement": [], "kappa": [], "n": []}
    x, y = np.concatenate(i1), np.concatenate(i2)
    ax, ay = ann[x], ann[y]
    same = ax == ay
    x, y, ax, ay = x[~same], y[~same], ax[~same], ay[~same]
    lo, hi = np.minimum(ax, ay), np.maximum(ax, ay)
    lx = np.where(ax <= ay, lab[x], lab[y])
    ly = np.where(ax <= ay, lab[y], lab[x])
    pid = lo * n_annotators + hi
    up, pinv = np.unique(pid, return_inverse=True)
    conf = np.zeros((up.size, K, K))
    np.add.at(conf, (pinv, lx, ly), 1.0)
    tot = conf.sum((1, 2))
    po = np.trace(conf, axis1=1, axis2=2) / tot
    pe = (conf.sum(2) * conf.sum(1)).sum(1) / tot**2
    kappa = np.where(pe < 1, (po - pe) / np.where(pe < 1, 1 - pe, 1), np.nan)
    return {
        "lo": (up // n_annotators).tolist(),
        "hi": (up % n_annotators).tolist(),
        "agreement": po.tolist(),
        "kappa": kappa.tolist(),
        "n": tot.astype(int).tolist(),
    }


def find_agreement(f: Frame, v: Votes | None = None, min_pair_items: int = 20) -> Findings:
    v = v if v is not None else votes(f)
    summary: dict[str, Any] = {"items_with_votes": int(v.n_items), "votes": int(v.rows.size)}
    unknown = int((v.annotator < 0).sum())
    summary["votes_by_unknown_annotators"] = unknown
    if unknown:
        summary["note_unknown_annotators"] = (
            f"{unknown} of these votes have no annotator: they count as votes by different, "
            "unknown annotators (Fleiss' κ and Krippendorff's α need no names; pairwise κ and "
            "per-annotator numbers do)"
        )
    if v.n_items == 0:
        summary["note"] = "no pair is judged more than once: agreement cannot be measured"
        return Findings(CHECK, summary=summary)
    n = v.counts.sum(1)
    summary["votes_per_item"] = {"mean": float(n.mean()), "max": int(n.max())}
    per_item = item_agreement(v.counts)
    summary["raw_agreement"] = float(per_item.mean())
    half = 1.959963984540054 * float(per_item.std(ddof=1)) / np.sqrt(per_item.size)
    summary["raw_agreement_ci"] = (
        [summary["raw_agreement"] - half, summary["raw_agreement"] + half]
        if per_item.size > 1
        else None
    )
    summary["unanimous_items"] = float((v.counts.max(1) == n).mean())
    summary["fleiss_kappa"] = fleiss_kappa(v.counts)
    summary["krippendorff_alpha"] = krippendorff_alpha(v.counts)
    h = entropy(v.counts)
    summary["mean_item_entropy"] = float(h.mean())
    pw = pairwise(v, len(f.annotators))
    if pw.get("kappa"):
        kap = np.asarray(pw["kappa"])
        big = np.asarray(pw["n"]) >= min_pair_items
        summary["cohen_kappa_mean"] = float(np.nanmean(kap[big])) if big.any() else None
        summary["annotator_pairs"] = int(big.sum())
        if len(f.annotators) == 2 and kap.size == 1:
            summary["cohen_kappa"] = float(kap[0])
    summary["pairwise"] = {
        "annotators": f.annotators,
        **{k: pw[k] for k in ("lo", "hi", "agreement", "kappa", "n") if k in pw},
    }
    disputed = h >= 0.9
    rows = v.rows[disputed[v.item]]
    summary["disputed_items"] = int(disputed.sum())
    t = make_rows(
        CHECK,
        "disputed_item",
        f.take_ids(rows),
        h[v.item][disputed[v.item]],
        "info",
        "votes on this pair are split with no majority",
    )
    return Findings(CHECK, t, summary)
