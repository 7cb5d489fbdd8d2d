"""`judge route`: which pairs are most worth a human label, given the judges' votes?

1. The judges' votes become one label per pair: Dawid–Skene over {a, b, tie} with each
   judge *in each display order* as its own annotator (so a judge that favours the first
   shown response gets a confusion matrix that says so); pairs that already have human
   votes enter as gold (their posterior is fixed to the human majority), which calibrates
   every judge's confusion matrix on them.
2. Per pair: how unsure the panel is (1 − max posterior, the margin |P(a) − P(b)|), how many
   judges disagree with the panel label, how many judges contradict themselves across the
   two orders, the length difference and whether the panel sided with the longer response,
   and each judge's agreement with the panel.
3. When at least `min_calibration` pairs have both human and judge labels (with both
   outcomes present), a logistic model of "the panel label differs from the human majority"
   on those features (standardised, ridge) gives P(judge label wrong) for every pair; its
   5-fold out-of-fold AUC and Brier score on the calibration pairs are reported. Otherwise
   the Dawid–Skene posterior gives it (1 − max posterior).
4. The `budget` pairs without a human label with the highest P(wrong) are routed (`by`:
   `auto` = the model when it can be fitted, else the posterior; or `model`, `uncertainty`,
   `disagreement` — judges disagreeing with each other or across orders, ties broken at
   random — or `random`, for comparison).

Expected label accuracy = expected agreement with a human label: 1 on pairs humans labelled,
1 − P(wrong) elsewhere; before and after the routed pairs get their human label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.judge.audit import Collected, collect, human_labels, judge_labels

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

STRATEGIES = ("auto", "model", "uncertainty", "disagreement", "random")
LABELS = ("a", "b", "tie")


@dataclass(frozen=True)
class Panel:
    posterior: F64  # pairs x 3 (a, b, tie); NaN rows for pairs without judge votes
    label: I64  # argmax; -1 without judge votes
    features: F64  # pairs x F
    feature_names: list[str]
    disagreement: F64  # share of judges disagreeing with the panel or across orders


def panel(c: Collected, gold: I64 | None = None) -> Panel:
    """Dawid–Skene panel labels and routing features (see module doc); `gold`: per pair a
    known label (0/1/2) or −1."""
    from prefkit.rank.aggregate import Votes, dawid_skene

    jm = c.is_judge[c.annotator]
    p, a, od, v = c.pair[jm], c.annotator[jm], c.order[jm], np.minimum(c.verdict[jm], 2)
    has = np.zeros(c.n_pairs, dtype=np.bool_)
    has[p] = True
    task_of = np.full(c.n_pairs, -1, dtype=np.int64)
    task_of[has] = np.arange(int(has.sum()))
    wkey = a * 3 + (od + 1)
    uw, widx = np.unique(wkey, return_inverse=True)
    votes = Votes(task_of[p], widx.astype(np.int64), v.astype(np.int64),
                  np.full(p.size, -1, dtype=np.int64), int(has.sum()),
                  tuple(str(x) for x in uw.tolist()))  # fmt: skip
    g: dict[int, int] = {}
    if gold is not None:
        for i in np.flatnonzero((gold >= 0) & has).tolist():
            g[int(task_of[i])] = int(gold[i])
    post_t, _, _ = dawid_skene(votes, g or None)
    post = np.full((c.n_pairs, 3), np.nan)
    post[has] = post_t
    label = np.where(has, np.nan_to_num(post, nan=0.0).argmax(axis=1), -1).astype(np.int64)
    judges = [j for j in range(len(c.names)) if c.is_judge[j]]
    jl = np.stack([judge_labels(c, j) for j in judges], axis=1)  # pairs x J
    present = jl >= 0
    agree = np.where(present, np.where(jl == label[:, None], 1.0, -1.0), 0.0)
    n_present = np.maximum(present.sum(axis=1), 1)
    dis = ((jl != label[:, None]) & present).sum(axis=1) / n_present
    # order inconsistency per judge
    inc = np.zeros(c.n_pairs)
    nboth = np.zeros(c.n_pairs)
    for j in judges:
        m = c.annotator == j
        v0 = np.full(c.n_pairs, -1)
        v1 = np.full(c.n_pairs, -1)
        v0[c.pair[m & (c.order == 0)]] = np.minimum(c.verdict[m & (c.order == 0)], 2)
        v1[c.pair[m & (c.order == 1)]] = np.minimum(c.verdict[m & (c.order == 1)], 2)
        both = (v0 >= 0) & (v1 >= 0)
        nboth += both
        inc += both & (v0 != v1)
    inconsistency = inc / np.maximum(nboth, 1)
    pm = np.nan_to_num(post, nan=1 / 3)
    dlen = np.nan_to_num((c.len_a - c.len_b) / 100.0)
    longer = np.sign(dlen)
    sided = np.where(label == 0, longer, np.where(label == 1, -longer, 0.0))
    feats = [
        1.0 - pm.max(axis=1),
        np.abs(pm[:, 0] - pm[:, 1]),
        pm[:, 2],
        dis,
        inconsistency,
        np.minimum(np.abs(dlen), 10.0),
        sided,
        sided * np.minimum(np.abs(dlen), 10.0),
    ]
    names = ["uncertainty", "margin", "p_tie", "judges_disagree", "orders_disagree",
             "abs_len_diff_100", "panel_picks_longer", "panel_picks_longer_x_len"]  # fmt: skip
    for k, j in enumerate(judges):
        feats.append(agree[:, k])
        names.append(f"agrees:{c.names[j]}")
    return Panel(post, label, np.stack(feats, axis=1), names, dis + inconsistency)


@dataclass
class Routing:
    routed: I64  # pair indices, most valuable first
    p_wrong: F64  # per pair (NaN where unknown)
    panel: Panel
    human: I64  # per pair human label (−1 none)
    summary: dict[str, Any]


def _auc(y: F64, s: F64) -> float | None:
    pos, neg = s[y == 1], s[y == 0]
    if pos.size == 0 or neg.size == 0:
        return None
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def route(
    c: Collected,
    budget: int,
    by: str = "auto",
    seed: int = 0,
    min_calibration: int = 30,
) -> Routing:
    """Choose `budget` pairs without a human label to send to people (module doc)."""
    from prefkit.audit.stats import logit_fit, oof_predict

    if by not in STRATEGIES:
        raise ValueError(f"by must be one of {', '.join(STRATEGIES)}")
    if budget < 0:
        raise ValueError("budget must be >= 0")
    rng = np.random.default_rng(seed)
    hl = human_labels(c)
    pn = panel(c, hl)
    judged = pn.label >= 0
    cand = np.flatnonzero(judged & (hl < 0))
    calib = np.flatnonzero(judged & (hl >= 0))
    x = pn.features
    mu, sd = x[judged].mean(axis=0), x[judged].std(axis=0) + 1e-9
    z = (x - mu) / sd
    summary: dict[str, Any] = {
        "pairs": c.n_pairs,
        "judged_pairs": int(judged.sum()),
        "human_labelled_pairs": int((hl >= 0).sum()),
        "candidates": int(cand.size),
        "budget": int(budget),
    }
    p_wrong = np.full(c.n_pairs, np.nan)
    p_wrong[judged] = 1.0 - np.nan_to_num(pn.posterior[judged]).max(axis=1)
    basis = "Dawid–Skene posterior of the judge panel"
    if calib.size:
        # the panel label of a calibration pair must not see that pair's human label:
        # 5-fold cross-fitting (Dawid–Skene with the other folds as gold)
        fold = rng.integers(0, 5, size=calib.size)
        cal_label = np.empty(calib.size, dtype=np.int64)
        cal_x = np.empty((calib.size, x.shape[1]))
        for k in range(5):
            sel = calib[fold == k]
            if not sel.size:
                continue
            g = hl.copy()
            g[sel] = -1
            pk = panel(c, g)
            cal_label[fold == k] = pk.label[sel]
            cal_x[fold == k] = pk.features[sel]
        y = (cal_label != hl[calib]).astype(np.float64)
        zc = (cal_x - mu) / sd
        summary["calibration"] = {
            "pairs": int(calib.size),
            "panel_agrees_with_humans": float(1 - y.mean()),
        }
        fit_ok = calib.size >= min_calibration and 5 <= y.sum() <= y.size - 5
        if fit_ok and by in ("auto", "model"):
            oof = oof_predict(zc, y, calib.astype(np.int64), folds=5, seed=seed, l2=1e-2)
            model = logit_fit(zc, y, l2=1e-2)
            p_wrong[judged] = model.predict(z[judged])
            basis = f"logistic model of judge-vs-human disagreement on {calib.size} pairs"
            summary["calibration"] |= {
                "oof_auc": _auc(y, oof),
                "oof_brier": float(np.mean((oof - y) ** 2)),
                "coefficients": {
                    n: round(float(b), 4)
                    for n, b in zip(pn.feature_names, model.coef[1:].tolist(), strict=True)
                },
            }
    if by == "model" and not basis.startswith("logistic"):
        raise ValueError(
            f"--by model needs at least {min_calibration} pairs with human and judge labels, "
            f"with at least 5 agreements and 5 disagreements (have {calib.size} pairs)"
        )
    summary["p_wrong_basis"] = basis
    n = min(int(budget), int(cand.size))
    if by in ("auto", "model", "uncertainty"):
        score = p_wrong[cand] if by != "uncertainty" else 1.0 - np.nan_to_num(
            pn.posterior[cand]).max(axis=1)  # fmt: skip
    elif by == "disagreement":
        score = pn.disagreement[cand]
    else:
        score = np.zeros(cand.size)
    tie_break = rng.random(cand.size)
    order = np.lexsort((tie_break, -score))
    routed = cand[order[:n]]
    used = "model" if by == "auto" and basis.startswith("logistic") else by
    if by == "auto" and used == "auto":
        used = "uncertainty"
    h = (hl >= 0).astype(np.float64)
    acc_pair = np.where(hl >= 0, 1.0, 1.0 - np.nan_to_num(p_wrong, nan=1.0))
    before = float(acc_pair.mean()) if c.n_pairs else None
    after_pair = acc_pair.copy()
    after_pair[routed] = 1.0
    after = float(after_pair.mean()) if c.n_pairs else None
    summary |= {
        "by": by,
        "strategy_used": used,
        "routed": int(routed.size),
        "expected_accuracy": {
            "before": before,
            "after": after,
            "gain": None if before is None or after is None else after - before,
            "meaning": "expected agreement with a human label over all pairs: 1 where humans "
            "labelled, 1 - P(judge label wrong) elsewhere (" + basis + ")",
            "judge_only_pairs_before": float(1 - np.nanmean(p_wrong[cand])) if cand.size else None,
        },
        "routed_mean_p_wrong": float(np.nanmean(p_wrong[routed])) if routed.size else None,
        "human_labelled_share": float(h.mean()) if c.n_pairs else 0.0,
    }
    return Routing(routed, p_wrong, pn, hl, summary)


def routing_tables(
    table: pa.Table, c: Collected, r: Routing, reasons_top: int = 3
) -> tuple[pa.Table, pa.Table]:
    """(campaign rows for the routed pairs, labelled rows for every other judged pair)."""
    from prefkit.build.pairs import orient, vote_groups
    from prefkit.schema import Kind, from_rows

    gidx, flipped, groups = vote_groups(table)
    if len(groups) != c.n_pairs:
        raise ValueError("the votes changed between collect and routing")
    votes = orient(table, flipped)
    head = votes.take(pa.array([g[0] for g in groups], pa.int64())).to_pylist()
    pn = r.panel
    rank_of = {int(p): k for k, p in enumerate(r.routed.tolist())}
    camp: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for i, row in enumerate(head):
        meta = dict(row.get("meta") or [])
        post = pn.posterior[i]
        base = {
            "prompt": row.get("prompt"), "prompt_id": row.get("prompt_id"),
            "response_a": row.get("response_a"), "response_b": row.get("response_b"),
            "model_a": row.get("model_a"), "model_b": row.get("model_b"),
            "source": row.get("source"), "aspect": row.get("aspect"),
        }  # fmt: skip
        pid = c.pair_ids[i]
        jmeta = {"pair_id": pid}
        if pn.label[i] >= 0:
            jmeta |= {
                "judge_label": LABELS[pn.label[i]],
                "judge_posterior_a": f"{post[0]:.4f}",
                "judge_posterior_b": f"{post[1]:.4f}",
                "judge_posterior_tie": f"{post[2]:.4f}",
                "p_judge_wrong": f"{r.p_wrong[i]:.4f}",
            }
        if i in rank_of:
            why = []
            if pn.features[i, 3] > 0:
                why.append(f"{pn.features[i, 3]:.0%} of judges disagree with the panel")
            if pn.features[i, 4] > 0:
                why.append(f"{pn.features[i, 4]:.0%} of judges change their verdict with the order")
            if pn.features[i, 0] > 0.2:
                why.append(f"panel unsure (max posterior {1 - pn.features[i, 0]:.2f})")
            why.append(f"P(judge label wrong) {r.p_wrong[i]:.2f}")
            camp.append(
                base | {
                    "id": f"route:{pid}",
                    "outcome": LABELS[pn.label[i]],
                    "meta": meta | jmeta | {"route_rank": str(rank_of[i] + 1),
                                            "route_reason": "; ".join(why[:reasons_top + 1])},
                }
            )  # fmt: skip
        elif pn.label[i] >= 0 or r.human[i] >= 0:
            src = "human" if r.human[i] >= 0 else "judge"
            lab = r.human[i] if r.human[i] >= 0 else pn.label[i]
            rest.append(
                base | {
                    "id": f"label:{pid}", "annotator": f"{src}:majority" if src == "human" else "judge:panel",
                    "outcome": LABELS[lab],
                    "strength": None if src == "human" else float(post[0] + 0.5 * post[2]),
                    "meta": meta | jmeta | {"label_source": src},
                }
            )  # fmt: skip
    camp.sort(key=lambda x: int(x["meta"]["route_rank"]))
    return from_rows(camp, Kind.COMPARISONS), from_rows(rest, Kind.COMPARISONS)


def route_table(
    votes: pa.Table,
    budget: int,
    human: pa.Table | None = None,
    judges: Sequence[str] | None = None,
    by: str = "auto",
    seed: int = 0,
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Library entry point: (campaign table, labelled rest, summary)."""
    from prefkit.schema import Kind, conform

    c = collect(votes, human, judges)
    r = route(c, budget, by, seed)
    parts = [conform(votes, Kind.COMPARISONS)]
    if human is not None:
        parts.append(conform(human, Kind.COMPARISONS))
    camp, rest = routing_tables(pa.concat_tables(parts), c, r)
    return camp, rest, r.summary


def label_accuracy(label: I64, truth: I64) -> F64:
    """Per pair: 1 when the label is the true one, ½ for a tie label, 0 otherwise."""
    return np.where(label == truth, 1.0, np.where(label == 2, 0.5, 0.0))


def evaluate_routing(
    votes: pa.Table,
    truth: I64,
    calibration_share: float = 0.1,
    budget_share: float = 0.1,
    strategies: Sequence[str] = ("auto", "disagreement", "random"),
    seed: int = 0,
) -> dict[str, Any]:
    """Final label accuracy when routing with each strategy, on data where every pair has
    judge votes *and* human votes (e.g. `simulate("judges", human_share=1.0)`) and the true
    label is known (`truth` per pair of `collect(votes)`, 0 = a, 1 = b).

    A random `calibration_share` of the pairs keeps its human votes visible; the others' are
    hidden and only revealed for the pairs a strategy routes (`budget_share` of all pairs).
    Final labels: human majority where visible or routed, the judge panel elsewhere."""
    c_all = collect(votes)
    hl_all = human_labels(c_all)
    if (hl_all < 0).any():
        raise ValueError("every pair needs human votes for this evaluation")
    rng = np.random.default_rng([seed, 7])
    n = c_all.n_pairs
    calib = rng.random(n) < calibration_share
    keep = c_all.is_judge[c_all.annotator] | calib[c_all.pair]
    hidden = Collected(
        pair=c_all.pair[keep], annotator=c_all.annotator[keep], order=c_all.order[keep],
        verdict=c_all.verdict[keep], source=[s for s, k in zip(c_all.source, keep.tolist(), strict=True) if k],
        names=c_all.names, is_judge=c_all.is_judge, n_pairs=n, len_a=c_all.len_a,
        len_b=c_all.len_b, model_a=c_all.model_a, model_b=c_all.model_b, pair_ids=c_all.pair_ids,
    )  # fmt: skip
    budget = int(round(budget_share * n))
    out: dict[str, Any] = {
        "pairs": n,
        "calibration_pairs": int(calib.sum()),
        "budget": budget,
        "human_majority_accuracy": float(label_accuracy(hl_all, truth).mean()),
    }
    base = route(hidden, 0, "random", seed)
    final0 = np.where(base.human >= 0, base.human, base.panel.label)
    out["no_routing"] = float(label_accuracy(final0, truth).mean())
    for by in strategies:
        r = route(hidden, budget, by, seed)
        final = np.where(r.human >= 0, r.human, r.panel.label)
        final[r.routed] = hl_all[r.routed]
        out[by] = float(label_accuracy(final, truth).mean())
        if by == "auto":
            out["auto_strategy_used"] = r.summary["strategy_used"]
            out["auto_expected_accuracy"] = r.summary["expected_accuracy"]
    return out
