"""Which pairs to train on, under a budget (docs/select.md).

Criteria, each a per-row score in 0..1 (higher = keep), combined by their weights:

- `audit`: a hard filter — rows the audit flags with severity error or warning are dropped
  (info findings are kept), counted per issue.
- `pairs`: each pair once — the rows that judge the same pair (`prefkit.build.pairs.
  vote_groups`) are merged into one row carrying the verdict of their votes (outcome: the
  side the mean vote favours; `strength`: the mean vote, the schema's graded preference), so
  a budget of rows reaches as many distinct pairs as it can instead of spending rows on
  repeated votes. Counted in rows: a kept row stands for all the (audit-passing) votes on
  its pair. Left out when no pair has two votes.
- `margin`: the sweet spot of the label's reward margin ``m = r(preferred) - r(other)``:
  1 inside the band of quantiles [lo, hi] of m (default 0.25..0.95: not contradicted by the
  reward model, not trivially easy), falling off linearly in quantile outside it; ties 0.5.
  The reward comes from `reward_a`/`reward_b` columns (`prefkit rm score`), else a given
  reward model, else the audit's cross-fitted feature model (out-of-fold P(a wins)).
- `agreement`: share of the pair's votes that agree with the row's outcome (pairs with one
  vote get 0.5; the criterion is left out when no pair has two votes).
- `diversity`: facility location over the rows' prompt embeddings (`prefkit.select.diversity`)
  with this weight.
- `balance`: source quotas from stated proportions (default equal shares).

Ties between equal scores are broken by a seeded random draw, so a run is deterministic for a
seed. Diversity runs on a candidate pool of the `POOL_FACTOR` x budget best rows by the other
criteria (all rows when that is more than there are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.select.criteria import (
    SelectError,
    parse_balance,
    prompt_vectors,
    quotas,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

POOL_FACTOR = 4
DEFAULT_BAND = (0.25, 0.95)
DROP_SEVERITIES = ("error", "warning")

Progress = Callable[[str], None]


@dataclass
class Selection:
    """Chosen rows (in order of choice), each row's reason, per-criterion scores of all rows,
    and the summary written to OUT.select.json."""

    rows: I64
    reasons: list[str]
    scores: dict[str, F64]
    total: F64
    summary: dict[str, Any] = field(default_factory=dict)
    votes: Votes | None = None


@dataclass(frozen=True)
class Votes:
    """The `pairs` criterion's merged labels, per input row (meaningful on the rows that
    stand for their pair): the verdict of the pair's votes in this row's orientation
    (`outcome`), the mean vote P(a preferred) (`strength`, NaN when no vote takes a side or
    ties), the number of votes merged (`count`) and the share of them on the verdict's side
    (`agreement`)."""

    outcome: list[str]
    strength: F64
    count: I64
    agreement: F64


def merge_votes(
    table: pa.Table, eligible: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], Votes, int]:
    """One row per pair among the `eligible` rows (the first of each pair) and the merged
    labels (`Votes`); the third value is the number of pairs with two or more eligible
    votes. A vote's value is its soft label (`prefkit.reward.data.soft_label`: a 1, b 0,
    tie 0.5, graded by `strength`); `both_bad` votes count towards `count` but not towards
    the mean, and a pair with only those keeps the outcome `both_bad`."""
    from prefkit.build.pairs import vote_groups
    from prefkit.reward.data import soft_label

    n = table.num_rows
    gidx, flip, groups = vote_groups(table)
    outcome = [str(x) for x in _col(table, "outcome")]
    strength = _col(table, "strength")
    y = np.array([soft_label(o, None if s is None else float(s))
                  for o, s in zip(outcome, strength, strict=True)])  # fmt: skip
    sided = np.array([o in ("a", "b", "tie") for o in outcome]) & eligible
    yg = np.where(flip, 1.0 - y, y)
    ng = len(groups)
    tot = np.zeros(ng)
    cnt = np.zeros(ng)
    every = np.zeros(ng)
    np.add.at(tot, gidx[sided], yg[sided])
    np.add.at(cnt, gidx[sided], 1.0)
    np.add.at(every, gidx[eligible], 1.0)
    mean_g = np.where(cnt > 0, tot / np.maximum(cnt, 1.0), 0.5)
    # the verdict's side per group, and how many of the group's votes took it
    side_g = np.where(mean_g > 0.5, 0, np.where(mean_g < 0.5, 1, 2))
    side_g = np.where(cnt > 0, side_g, 3)
    o_arr = np.asarray(outcome, dtype=object)
    vote_side = np.where(o_arr == "a", 0, np.where(o_arr == "b", 1, np.where(o_arr == "tie", 2, 3)))
    vote_side = np.where(flip & (vote_side < 2), 1 - vote_side, vote_side)
    same = np.zeros(ng)
    np.add.at(same, gidx[eligible], (vote_side[eligible] == side_g[gidx[eligible]]).astype(float))
    rep = np.zeros(n, dtype=bool)
    seen = np.zeros(ng, dtype=bool)
    for i in np.flatnonzero(eligible).tolist():
        if not seen[gidx[i]]:
            seen[gidx[i]] = True
            rep[i] = True
    m_row = np.where(flip, 1.0 - mean_g[gidx], mean_g[gidx])
    s_row = side_g[gidx]
    s_row = np.where(flip & (s_row < 2), 1 - s_row, s_row)
    names = np.array(["a", "b", "tie", "both_bad"], dtype=object)[s_row]
    graded = (s_row < 2) & (cnt[gidx] > 0)
    votes = Votes(
        outcome=[str(x) for x in names],
        strength=np.where(graded, m_row, np.nan),
        count=every[gidx].astype(np.int64),
        agreement=np.where(every[gidx] > 0, same[gidx] / np.maximum(every[gidx], 1.0), 0.0),
    )
    return rep, votes, int((every > 1).sum())


def selected_table(table: pa.Table, sel: Selection) -> pa.Table:
    """The chosen rows of `table` in the order chosen; with the `pairs` criterion each row
    carries its pair's merged label (`outcome`, `strength`) instead of its own vote."""
    sub = table.take(pa.array(sel.rows, pa.int64()))
    if sel.votes is None:
        return sub
    rows = sel.rows.tolist()
    out = pa.array([sel.votes.outcome[i] for i in rows], pa.string())
    st = sel.votes.strength[sel.rows]
    stc = pa.array([None if not np.isfinite(v) else float(v) for v in st.tolist()], pa.float64())
    for name, col in (("outcome", out), ("strength", stc)):
        if name in sub.column_names:
            pos = sub.column_names.index(name)
            sub = sub.set_column(
                pos,
                pa.field(name, sub.schema.field(name).type),
                col.cast(sub.schema.field(name).type),
            )
        else:
            sub = sub.append_column(name, col)
    return sub


def _col(table: pa.Table, name: str) -> list[Any]:
    if name in table.column_names:
        return list(table.column(name).to_pylist())
    return [None] * table.num_rows


def signed_margin(delta: F64, outcome: list[Any]) -> F64:
    """r(preferred) − r(other) per row from r(a) − r(b); NaN for ties and both_bad."""
    o = np.asarray([str(x) for x in outcome], dtype=object)
    return np.where(o == "a", delta, np.where(o == "b", -delta, np.nan))


def band_score(m: F64, lo: float, hi: float) -> tuple[F64, tuple[float, float]]:
    """1 inside the [lo, hi] quantile band of the finite margins, falling off linearly in
    quantile outside it (0 at the far end); 0.5 where the margin is undefined."""
    ok = np.isfinite(m)
    out = np.full(m.size, 0.5)
    if not ok.any():
        return out, (float("nan"), float("nan"))
    from scipy.stats import rankdata

    q = np.zeros(m.size)
    q[ok] = (rankdata(m[ok]) - 0.5) / ok.sum()
    below = np.clip(q / lo, 0, 1) if lo > 0 else np.ones(m.size)
    above = np.clip((1 - q) / (1 - hi), 0, 1) if hi < 1 else np.ones(m.size)
    out[ok] = np.minimum(below, above)[ok]
    edges = np.quantile(m[ok], [lo, hi])
    return out, (float(edges[0]), float(edges[1]))


def agreement_score(table: pa.Table) -> tuple[F64, int]:
    """Per row: the share of its pair's votes with the same outcome (orientation-aware);
    0.5 for single-vote pairs. Returns (scores, pairs with two or more votes)."""
    from prefkit.build.pairs import vote_groups

    gidx, flip, groups = vote_groups(table)
    o = np.asarray([str(x) for x in _col(table, "outcome")], dtype=object)
    side = np.where(o == "a", 0, np.where(o == "b", 1, 2))
    side = np.where((side < 2) & flip, 1 - side, side)
    ng = len(groups)
    cnt = np.zeros((ng, 3))
    np.add.at(cnt, (gidx, side), 1.0)
    tot = cnt.sum(axis=1)
    same = cnt[gidx, side]
    out = np.where(tot[gidx] > 1, same / np.maximum(tot[gidx], 1), 0.5)
    return out, int((tot > 1).sum())


def _reward_delta(table: pa.Table, rm: str | None, audit_p_a: F64 | None) -> tuple[F64 | None, str]:
    if {"reward_a", "reward_b"} <= set(table.column_names):
        ra = np.array(_col(table, "reward_a"), dtype=np.float64)
        rb = np.array(_col(table, "reward_b"), dtype=np.float64)
        return ra - rb, "reward_a/reward_b columns"
    if rm is not None:
        from prefkit.reward.data import pairs_from_table
        from prefkit.reward.models import load_model

        model = load_model(rm)
        p = pairs_from_table(table)
        if len(p) != table.num_rows:
            raise SelectError(f"--rm {rm}: {table.num_rows - len(p)} rows have no response text")
        return model.score(p.prompts, p.a) - model.score(p.prompts, p.b), f"reward model {rm}"
    if audit_p_a is not None:
        pa_ = np.clip(np.asarray(audit_p_a, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(pa_ / (1 - pa_)), "the audit's cross-fitted feature model (out of fold)"
    return None, ""


def select_train(
    table: pa.Table,
    budget: int,
    weights: dict[str, float],
    seed: int = 0,
    findings: pa.Table | None = None,
    rm: str | None = None,
    embeddings: Path | None = None,
    cache_dir: Path | None = None,
    band: tuple[float, float] = DEFAULT_BAND,
    balance: str | None = None,
    progress: Progress | None = None,
) -> Selection:
    """Choose `budget` rows of a comparisons table for training (module doc)."""
    from prefkit.schema import messages_text

    def say(step: str) -> None:
        if progress is not None:
            progress(step)

    n = table.num_rows
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    crit: dict[str, Any] = {}
    eligible = np.ones(n, dtype=bool)
    scores: dict[str, F64] = {}
    audit_p_a: F64 | None = None
    ids = [str(x) if x is not None else str(i) for i, x in enumerate(_col(table, "id"))]

    need_audit = "audit" in weights or (
        "margin" in weights and rm is None and "reward_a" not in table.column_names
    )
    if need_audit and findings is None:
        from prefkit.audit.run import run_audit

        say("audit")
        res = run_audit(table) if "audit" in weights else run_audit(table, checks=("noise",))
        findings = res.rows
        audit_p_a = None if res.p_a is None else np.asarray(res.p_a, dtype=np.float64)
        ids = [str(x) for x in res.row_ids] if res.row_ids is not None else ids
        if "audit" not in weights:
            findings = None
    if "audit" in weights and findings is not None:
        sev = np.asarray(findings.column("severity").to_pylist(), dtype=object)
        bad = findings.filter(pa.array(np.isin(sev, DROP_SEVERITIES)))
        flagged = set(bad.column("row_id").to_pylist())
        drop = np.fromiter((i in flagged for i in ids), dtype=bool, count=n)
        per_issue: dict[str, int] = {}
        for issue in bad.column("issue").to_pylist():
            per_issue[f"{issue}"] = per_issue.get(f"{issue}", 0) + 1
        eligible &= ~drop
        crit["audit"] = {
            "weight": weights["audit"],
            "dropped_rows": int(drop.sum()),
            "dropped_by_issue": dict(sorted(per_issue.items(), key=lambda kv: -kv[1])),
            "rule": "rows with an error or warning finding are dropped; info findings kept",
        }
    elif "audit" in weights:
        crit["audit"] = {"weight": weights["audit"], "dropped_rows": 0}

    outcome = _col(table, "outcome")
    votes: Votes | None = None
    if "pairs" in weights:
        say("pairs")
        rep, merged, multi = merge_votes(table, eligible)
        if multi == 0:
            notes.append("pairs: no pair has two or more votes; criterion left out")
            crit["pairs"] = {"weight": 0.0, "pairs_with_several_votes": 0}
        else:
            votes = merged
            crit["pairs"] = {
                "weight": weights["pairs"],
                "rule": "one row per pair, labelled by the mean of its votes (outcome: the "
                "side it favours, strength: the mean); a kept row stands for its pair's votes",
                "pairs": int(rep.sum()),
                "pairs_with_several_votes": multi,
                "rows_merged": int((eligible & ~rep).sum()),
            }
            eligible &= rep
            outcome = merged.outcome
    if "margin" in weights:
        say("margin")
        delta, basis = _reward_delta(table, rm, audit_p_a)
        if delta is None:
            from prefkit.audit.run import run_audit

            res = run_audit(table, checks=("noise",))
            if res.p_a is None:
                raise SelectError("the margin criterion needs response text or reward_a/reward_b")
            delta, basis = _reward_delta(table, None, np.asarray(res.p_a, dtype=np.float64))
        assert delta is not None
        m = signed_margin(delta, outcome)
        s, edges = band_score(np.where(eligible, m, np.nan), band[0], band[1])
        scores["margin"] = s
        crit["margin"] = {
            "weight": weights["margin"],
            "basis": basis,
            "band_quantiles": list(band),
            "band": list(edges),
            "rows_in_band": int(((s >= 1.0) & eligible).sum()),
            "contradicted_rows": int(((m < 0) & eligible).sum()),
        }
    if "agreement" in weights:
        say("agreement")
        if votes is not None:  # the share of the pair's votes that agree with its verdict
            s = np.where(votes.count > 1, votes.agreement, 0.5)
            multi = int(crit["pairs"]["pairs_with_several_votes"])
        else:
            s, multi = agreement_score(table)
        if multi == 0:
            notes.append("agreement: no pair has two or more votes; criterion left out")
            crit["agreement"] = {"weight": 0.0, "pairs_with_votes": 0}
        else:
            scores["agreement"] = s
            crit["agreement"] = {
                "weight": weights["agreement"],
                "pairs_with_several_votes": multi,
                "rows_full_agreement": int(((s >= 1.0) & eligible).sum()),
                "rows_disputed": int(((s < 0.5) & eligible).sum()),
            }

    wsum = sum(weights[c] for c in scores if crit[c]["weight"] > 0)
    total = np.zeros(n)
    for c, s in scores.items():
        if crit[c]["weight"] > 0:
            total += crit[c]["weight"] * s
    total = total / wsum if wsum > 0 else total
    total = total + rng.random(n) * 1e-9  # seeded tie-break
    cand = np.flatnonzero(eligible)
    if cand.size < budget:
        notes.append(
            f"only {cand.size} rows pass the filters, fewer than the budget {budget}: keeping "
            f"all {cand.size}"
        )
    k = min(budget, int(cand.size))

    sources = [str(x) for x in _col(table, "source")]
    group = None
    quota_arr = None
    src_names = list(dict.fromkeys(sources[i] for i in cand.tolist()))
    if "balance" in weights:
        try:
            parse_balance(balance, src_names)  # a named source that is not in the data
        except ValueError as e:
            raise SelectError(str(e)) from None
        if len(src_names) < 2:
            notes.append("balance: the data has one source; criterion left out")
            crit["balance"] = {"weight": 0.0, "sources": src_names}
        else:
            try:
                shares = parse_balance(balance, src_names)
            except ValueError as e:
                raise SelectError(str(e)) from None
            avail = {s: 0 for s in src_names}
            for i in cand.tolist():
                avail[sources[i]] += 1
            q = quotas(shares, avail, k)
            pos = {s: j for j, s in enumerate(src_names)}
            group = np.array([pos.get(sources[i], 0) for i in range(n)], dtype=np.int64)
            quota_arr = np.array([q[s] for s in src_names], dtype=np.int64)
            crit["balance"] = {
                "weight": weights["balance"],
                "target_shares": shares,
                "quotas": q,
                "available": avail,
            }

    # candidate pool for diversity: the best rows by the other criteria
    order = cand[np.argsort(-total[cand], kind="stable")]
    div_w = weights.get("diversity", 0.0)
    if "diversity" in weights and k > 0:
        pool = order[: min(order.size, max(POOL_FACTOR * k, k))]
        if group is not None and quota_arr is not None:
            # every source keeps enough candidates to fill its quota
            extra = [order[group[order] == g][: POOL_FACTOR * int(quota_arr[g])]
                     for g in range(quota_arr.size)]  # fmt: skip
            pool = np.unique(np.concatenate([pool, *extra]))
            pool = pool[np.argsort(-total[pool], kind="stable")]
        say("embeddings")
        ptab = table.select(["prompt_id", "prompt"]).take(pa.array(pool, pa.int64()))
        pids = [str(x) for x in ptab.column("prompt_id").to_pylist()]
        texts = (
            [messages_text(p) for p in ptab.column("prompt").to_pylist()]
            if embeddings is None
            else [""] * len(pids)
        )
        vecs, inv, info = prompt_vectors(pids, texts, embeddings, cache_dir)
        say("diversity")
        from prefkit.select.diversity import facility_location, knn_graph

        g = knn_graph(vecs[inv], seed=seed)
        chosen_local, gains = facility_location(
            g, total[pool], k, div_w,
            None if quota_arr is None else quota_arr,
            None if group is None else group[pool],
        )  # fmt: skip
        chosen = pool[chosen_local]
        cover = _coverage(g, chosen_local)
        rand_cover = _coverage(g, np.sort(rng.choice(pool.size, size=chosen.size, replace=False)))
        crit["diversity"] = {
            "weight": div_w,
            "method": "facility location (lazy greedy) over a k-NN graph of prompt embeddings",
            "neighbours": g.method,
            "pool": int(pool.size),
            "coverage": cover,
            "coverage_of_random_subset": rand_cover,
            **info,
        }
    else:
        from prefkit.select.diversity import Graph, facility_location

        empty = Graph(np.zeros((order.size, 0), np.int64), np.zeros((order.size, 0), np.float32), "none")  # fmt: skip
        loc, gains = facility_location(
            empty, total[order], k, 0.0,
            quota_arr, None if group is None else group[order],
        )  # fmt: skip
        chosen = order[loc]

    reasons = _reasons(chosen, gains, scores, crit, sources, div_w, votes)
    kept_src: dict[str, int] = {}
    for i in chosen.tolist():
        kept_src[sources[i]] = kept_src.get(sources[i], 0) + 1
    summary: dict[str, Any] = {
        "purpose": "train",
        "input_rows": n,
        "eligible_rows": int(cand.size),
        "kept": int(chosen.size),
        "seed": seed,
        "criteria": crit,
        "kept_by_source": kept_src,
        "mean_score": {
            c: {
                "kept": float(s[chosen].mean()) if chosen.size else None,
                "all_eligible": float(s[cand].mean()) if cand.size else None,
            }
            for c, s in scores.items()
        },  # fmt: skip
        "notes": notes,
    }
    if votes is not None:
        crit["pairs"]["votes_behind_kept_rows"] = int(votes.count[chosen].sum())
        crit["pairs"]["kept_rows_with_several_votes"] = int((votes.count[chosen] > 1).sum())
    return Selection(chosen, reasons, scores, total, summary, votes)


def _coverage(g: Any, chosen: I64) -> float:
    """Mean over pool rows of the best similarity to a chosen row among the row's k-NN
    (1 for chosen rows): the facility-location coverage, 0..1."""
    n = g.idx.shape[0]
    cov = np.zeros(n)
    if chosen.size == 0:
        return 0.0
    cov[chosen] = 1.0
    nb = g.idx[chosen]
    sm = g.sim[chosen]
    ok = nb >= 0
    np.maximum.at(cov, nb[ok], sm[ok])
    return float(cov.mean())


def _reasons(
    chosen: I64,
    gains: F64,
    scores: dict[str, F64],
    crit: dict[str, Any],
    sources: list[str],
    div_w: float,
    votes: Votes | None = None,
) -> list[str]:
    out = []
    for r, (i, gval) in enumerate(zip(chosen.tolist(), gains.tolist(), strict=False)):
        parts = []
        if "audit" in crit:
            parts.append("no audit error/warning")
        if votes is not None:
            parts.append(f"pair's {int(votes.count[i])} vote(s) merged: {votes.outcome[i]}")
        if "margin" in scores:
            s = scores["margin"][i]
            parts.append("margin in band" if s >= 1 else f"margin band score {s:.2f}")
        if "agreement" in scores:
            parts.append(f"vote agreement {scores['agreement'][i]:.2f}")
        if div_w > 0:
            parts.append(f"gain {gval:.3f} (score + diversity)")
        if "balance" in crit and crit["balance"]["weight"] > 0:
            parts.append(f"source {sources[i]}")
        out.append(f"#{r + 1}: " + "; ".join(parts))
    return out
