"""Group leaderboards and the heterogeneity test: `prefkit rank --by annotator|group|source|KEY`.

One leaderboard per group (fitted and given intervals exactly as the pooled one), and an answer
to "do the groups rank the items differently?":

- **Likelihood-ratio test** of one Bradley–Terry model for every group against one model per
  group: T = 2 (max log-lik of the per-group models − max log-lik of the pooled model). Ties
  count as half a win (or are dropped with ``--ties drop``); with the tie models the test is
  still run on Bradley–Terry strengths (a note says so). Every fit of the test carries the same
  small L2 prior (`TEST_PRIOR`) so that a group in which some item never wins still has a
  finite maximum.
- Its **p-value** comes from a permutation test: group labels are shuffled among the battles
  of the same pair of items, which leaves the pooled fit unchanged and is exact under the null
  hypothesis that every group has the same outcome probabilities on every pair (the
  permutation p-value (1 + #{T* >= T}) / (1 + R) never rejects a true null more often than
  its level). The asymptotic chi-square p-value (df = per-group parameters − pooled
  parameters) is reported beside it; with few battles per group it is not reliable.
- **Per-item group differences**: the score of an item in a group minus its score among
  everyone else (both fitted with the leaderboard's model and centred on the items they share),
  with a Wald interval from the two fits' sandwich covariances (independent data).

Groups with fewer than `min_votes` battles are merged into ``(other)``; if that is still too
small (or a group's battles cannot be ranked), its battles stay in the pooled leaderboard
only and the group is listed in ``pooled_groups`` with the reason. Nothing is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.rank.bt import (
    AUTO_PRIOR,
    Fit,
    Problem,
    RankConfig,
    TiePolicy,
    fit_problem,
    problem,
    tie_counts,
)
from prefkit.rank.ci import Intervals, _batched_newton, _batched_obj, covariance
from prefkit.rank.data import Battles, RankInputError, aggregate
from prefkit.rank.leaderboard import ELO_PER_LOGIT, Leaderboard, leaderboard

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

MIN_VOTES = 30  # battles a group needs for its own leaderboard
OTHER = "(other)"
TEST_PRIOR = 0.01  # L2 precision of every fit of the heterogeneity test
PERMUTATIONS = 1000
TEST_MAX_ITEMS = 400  # permutation fits are batched dense Newton solves up to this many items
DIFF_MAX_ITEMS = 5000  # differences need a dense sandwich covariance


@dataclass(frozen=True)
class GroupBoard:
    name: str
    data: Battles
    problem: Problem
    fit: Fit
    intervals: Intervals
    board: Leaderboard
    notes: tuple[str, ...]

    @property
    def battles(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class GroupsResult:
    summary: dict[str, Any]  # the keys `prefkit rank --by` adds to the JSON
    boards: list[GroupBoard]


def _subset(b: Battles, mask: NDArray[np.bool_]) -> Battles:
    return Battles(b.items, b.a[mask], b.b[mask], b.outcome[mask], b.weight[mask], b.rows[mask])


def _restrict(b: Battles, items: tuple[str, ...]) -> Battles:
    """The battles between `items` only (the pooled fit's items when it dropped some)."""
    if items == b.items:
        return b
    keep = np.isin(np.asarray(b.items, dtype=object), np.asarray(items, dtype=object))
    mask = keep[b.a] & keep[b.b]
    return _subset(b, mask)


def split_groups(
    labels: list[str], battles: Battles, min_votes: int
) -> tuple[list[str], I64, dict[str, int], list[dict[str, Any]]]:
    """Group codes per battle: groups with at least `min_votes` battles keep their name, the
    rest are merged into `OTHER` (kept when it reaches `min_votes`, else left to the pooled
    leaderboard, code -1). Returns (group names, code per battle, battles per original label,
    the pooled-only groups with their reason)."""
    per_battle = [labels[r] for r in battles.rows.tolist()]
    sizes: dict[str, int] = {}
    for lab in per_battle:
        sizes[lab] = sizes.get(lab, 0) + 1
    big = sorted((g for g, n in sizes.items() if n >= min_votes), key=lambda g: (-sizes[g], g))
    small = sorted((g for g, n in sizes.items() if n < min_votes), key=lambda g: (-sizes[g], g))
    n_small = sum(sizes[g] for g in small)
    names = list(big)
    pooled: list[dict[str, Any]] = []
    if small and n_small >= min_votes and OTHER not in sizes:
        names.append(OTHER)
        pooled += [
            {"group": g, "battles": sizes[g], "reason": f"fewer than {min_votes} battles: "
             f"merged into {OTHER}"} for g in small
        ]  # fmt: skip
        code_of = {g: q for q, g in enumerate(big)} | {g: len(big) for g in small}
    else:
        pooled += [
            {"group": g, "battles": sizes[g], "reason": f"fewer than {min_votes} battles "
             f"({n_small} in all such groups): pooled leaderboard only"} for g in small
        ]  # fmt: skip
        code_of = {g: q for q, g in enumerate(big)}
    codes = np.fromiter((code_of.get(lab, -1) for lab in per_battle), np.int64, len(per_battle))
    return names, codes, sizes, pooled


IntervalFn = Callable[[Problem, Fit], Intervals]


def group_board(
    name: str,
    b: Battles,
    config: RankConfig,
    make_intervals: IntervalFn,
    scale: Any,
    anchor: tuple[str, float] | None,
) -> GroupBoard:
    """One group's leaderboard with the pooled options (largest component, automatic prior)."""
    counts = aggregate(b)
    p = problem(counts, replace(config, components="largest"))
    f = fit_problem(p)
    notes = list(f.notes)
    try:
        iv = make_intervals(p, f)
    except RankInputError:
        if config.prior is not None or p.prior > 0:
            raise
        # a resample of a small group in which some item never wins has no finite estimate
        p = problem(counts, replace(config, components="largest", prior=AUTO_PRIOR))
        f = fit_problem(p)
        iv = make_intervals(p, f)
        notes.append(
            f"some interval rounds had no finite estimate without a prior (an item never won or "
            f"never lost in a resample): fitted with the L2 prior {AUTO_PRIOR}"
        )
    if anchor is not None and anchor[0] not in f.items:
        notes.append(f"anchor item {anchor[0]!r} not in this group: scores centred instead")
        anchor = None
    board = leaderboard(f, iv, counts, scale, anchor)
    return GroupBoard(name, b, p, f, iv, board, tuple(notes))


# ---------------------------------------------------------------------------------------
# Heterogeneity test


@dataclass(frozen=True)
class _Units:
    """Battles mapped to the unordered item pairs (units) of the pooled test problem."""

    unit: I64  # per battle
    rel: I64  # outcome relative to (lo, hi): 0 lo wins, 1 hi wins, 2 tie
    weight: F64
    i: I64  # per unit: lo item
    j: I64  # per unit: hi item
    k: int


def _units(b: Battles) -> _Units:
    k = len(b.items)
    lo, hi = np.minimum(b.a, b.b), np.maximum(b.a, b.b)
    rel = np.where((b.a > b.b) & (b.outcome != 2), 1 - b.outcome, b.outcome)
    uniq, unit = np.unique(lo * k + hi, return_inverse=True)
    return _Units(unit.astype(np.int64), rel.astype(np.int64), b.weight, uniq // k, uniq % k, k)


def _bt_problem(items: tuple[str, ...], i: I64, j: I64, y3: F64, ties: str) -> Problem:
    """A Bradley–Terry problem with the test prior, built directly (no connectivity checks:
    the prior makes every component's strengths finite and identified)."""
    u = i.size
    n = np.ones((u, 3), dtype=np.int64)
    return Problem(
        items, "bt", ties, i, j, tie_counts(y3, "bt", ties), y3, n, np.ones((u, 3)),  # type: ignore[arg-type]
        np.arange(u, dtype=np.int64), i, j, None, TEST_PRIOR,
    )  # fmt: skip


def _components(k: int, i: I64, j: I64) -> int:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    g = sp.coo_matrix((np.ones(i.size), (i, j)), shape=(k, k))
    return int(connected_components(g, directed=False)[0])


def heterogeneity_test(
    b: Battles,
    group: I64,
    names: list[str],
    ties: str = "half",
    permutations: int = PERMUTATIONS,
    rng: np.random.Generator | None = None,
    level: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Likelihood-ratio test of one Bradley–Terry model vs one per group (module docstring).

    `group`: code 0..G-1 per battle of `b`. Returns the JSON section `heterogeneity`,
    including each group's contribution (`deviance`) to the statistic."""
    from scipy.stats import chi2

    if ties not in ("half", "drop"):
        raise RankInputError(
            f"the heterogeneity test counts ties as half or drops them, not {ties!r}"
        )
    gen = rng if rng is not None else np.random.default_rng(0)
    tp: TiePolicy = "drop" if ties == "drop" else "half"
    n_groups = len(names)
    un = _units(b)
    n_units = un.i.size
    y_pool = np.zeros((n_units, 3))
    np.add.at(y_pool, (un.unit, un.rel), un.weight)
    p0 = _bt_problem(b.items, un.i, un.j, y_pool, ties)
    x0 = _batched_newton(p0, np.zeros(un.k), y_pool[None])[0]
    # every group's units (fixed under the permutation) and its local items
    locals_: list[tuple[Problem, I64, F64, int]] = []
    for g in range(n_groups):
        sel = group == g
        units_g = np.unique(un.unit[sel])
        items_g = np.unique(np.concatenate([un.i[units_g], un.j[units_g]]))
        remap = np.full(un.k, -1, dtype=np.int64)
        remap[items_g] = np.arange(items_g.size)
        li, lj = remap[un.i[units_g]], remap[un.j[units_g]]
        y3 = np.zeros((units_g.size, 3))
        pg = _bt_problem(tuple(b.items[t] for t in items_g.tolist()), li, lj, y3, ties)
        locals_.append((pg, units_g, x0[items_g], _components(items_g.size, li, lj)))
    df = sum(pg.k - c for pg, _, _, c in locals_) - (un.k - _components(un.k, un.i, un.j))
    if df < 1:
        raise RankInputError("the groups share no comparison: nothing to test")
    # flat cell index per (group, local unit, outcome) for counting one round in one bincount
    offset = np.zeros(n_groups + 1, dtype=np.int64)
    local_unit = np.full((n_groups, n_units), -1, dtype=np.int64)
    for g, (_, units_g, _, _) in enumerate(locals_):
        offset[g + 1] = offset[g] + 3 * units_g.size
        local_unit[g, units_g] = np.arange(units_g.size)
    cells = int(offset[-1])

    def statistic(codes: NDArray[np.int64]) -> tuple[F64, F64]:
        """(R rounds of group codes per battle) -> (T per round, deviance per group x round)."""
        r = codes.shape[0]
        flat = offset[codes] + local_unit[codes, un.unit[None, :]] * 3 + un.rel[None, :]
        flat = flat + np.arange(r)[:, None] * cells
        y: F64 = np.asarray(
            np.bincount(flat.ravel(), np.tile(un.weight, r), r * cells), dtype=np.float64
        ).reshape(r, cells)
        dev = np.empty((n_groups, r))
        for g, (pg, _, xg0, _) in enumerate(locals_):
            y3 = y[:, offset[g] : offset[g + 1]].reshape(r, -1, 3)
            yy = np.stack([tie_counts(y3[q], "bt", tp) for q in range(r)])
            xg = _batched_newton(pg, xg0, y3)
            at_pool = _batched_obj(replace(pg, prior=0.0), np.repeat(xg0[None], r, 0), yy)
            dev[g] = 2.0 * (at_pool - _batched_obj(pg, xg, yy))
        return dev.sum(axis=0) + TEST_PRIOR * float(x0 @ x0), dev

    t_obs, dev_obs = statistic(group[None, :])
    stat = float(t_obs[0])
    p_chi2 = float(chi2.sf(stat, df))
    exceed = 0
    done = 0
    if permutations > 0:
        order = np.argsort(un.unit, kind="stable")
        sorted_codes = group[order]
        chunk = int(max(1, min(100, 20_000_000 // max(len(b), 1))))
        while done < permutations:
            r = min(chunk, permutations - done)
            keys = un.unit[None, :] + gen.random((r, len(b)))
            perm = np.argsort(keys, axis=1)
            codes = np.empty((r, len(b)), dtype=np.int64)
            np.put_along_axis(codes, perm, np.broadcast_to(sorted_codes, (r, len(b))), axis=1)
            t_r, _ = statistic(codes)
            exceed += int((t_r >= stat - 1e-9 * max(1.0, abs(stat))).sum())
            done += r
            if progress is not None:
                progress(r)
    p_perm = (1 + exceed) / (1 + permutations) if permutations > 0 else None
    alpha = 1.0 - level
    p_used = p_perm if p_perm is not None else p_chi2
    return {
        "test": "likelihood-ratio",
        "model": "bt",
        "ties": ties,
        "statistic": stat,
        "df": int(df),
        "p_value": p_used,
        "p_value_permutation": p_perm,
        "p_value_chi2": p_chi2,
        "permutations": int(permutations),
        "alpha": alpha,
        "reject": bool(p_used <= alpha),
        "groups_tested": n_groups,
        "battles_tested": len(b),
        "prior": TEST_PRIOR,
        "deviance": {names[g]: float(dev_obs[g, 0]) for g in range(n_groups)},
        "method": (
            f"2 x (log-likelihood of one Bradley-Terry model per group - of one pooled model), "
            f"ties {'half a win' if ties == 'half' else 'dropped'}, L2 prior {TEST_PRIOR}; "
            + (
                f"p-value from {permutations} permutations of the group labels within each pair "
                "of items"
                if permutations > 0
                else f"asymptotic chi-square p-value ({df} df)"
            )
        ),
    }


# ---------------------------------------------------------------------------------------
# Per-item differences: a group against everyone else


def group_differences(
    board: GroupBoard,
    rest: Battles,
    config: RankConfig,
    level: float,
    scale: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Records `group, item, difference, ci_low, ci_high, significant` for the items the group
    and the rest both rank: (score in the group) − (score among everyone else), both centred on
    those shared items, on the leaderboard's scale; Wald intervals from the two independent
    fits' sandwich covariances."""
    from scipy.stats import norm

    notes: list[str] = []
    counts = aggregate(rest)
    p_rest = problem(counts, replace(config, components="largest"))
    f_rest = fit_problem(p_rest)
    common = [t for t in board.fit.items if t in set(f_rest.items)]
    if len(common) < 2:
        return [], [f"group {board.name!r}: fewer than two items shared with the rest"]
    ig = np.array([board.fit.items.index(t) for t in common])
    ir = np.array([f_rest.items.index(t) for t in common])
    m = len(common)
    proj = np.eye(m) - 1.0 / m
    d = proj @ (board.fit.theta[ig] - f_rest.theta[ir])
    factor = ELO_PER_LOGIT if scale == "elo" else 1.0
    low = high = None
    if max(len(board.fit.items), len(f_rest.items)) <= DIFF_MAX_ITEMS:
        vg = covariance(board.problem, board.fit, "sandwich")[np.ix_(ig, ig)]
        vr = covariance(p_rest, f_rest, "sandwich")[np.ix_(ir, ir)]
        se = np.sqrt(np.clip(np.diag(proj @ (vg + vr) @ proj), 0.0, None))
        z = float(norm.ppf(0.5 + level / 2.0))
        low, high = d - z * se, d + z * se
    else:
        notes.append(
            f"group {board.name!r}: differences without intervals (over {DIFF_MAX_ITEMS} items)"
        )
    rows: list[dict[str, Any]] = []
    for q, item in enumerate(common):
        lo = None if low is None else float(factor * low[q])
        hi = None if high is None else float(factor * high[q])
        rows.append(
            {
                "group": board.name,
                "item": item,
                "difference": float(factor * d[q]),
                "ci_low": lo,
                "ci_high": hi,
                "significant": None if lo is None or hi is None else bool(lo > 0 or hi < 0),
            }
        )
    rows.sort(key=lambda r: -abs(float(r["difference"])))
    return rows, notes


# ---------------------------------------------------------------------------------------
# Everything `prefkit rank --by` adds


def rank_groups(
    table: pa.Table,
    pooled: Battles,
    items: tuple[str, ...],
    by: str,
    config: RankConfig,
    make_intervals: IntervalFn,
    scale: Any = "elo",
    anchor: tuple[str, float] | None = None,
    level: float = 0.95,
    min_votes: int = MIN_VOTES,
    permutations: int = PERMUTATIONS,
    rng: np.random.Generator | None = None,
    progress: Callable[[int], None] | None = None,
) -> GroupsResult:
    """Group leaderboards, the heterogeneity test and per-item differences for the battles
    `pooled` of `table` (restricted to the pooled leaderboard's `items`)."""
    from prefkit.build.groups import GroupingError, group_labels

    if min_votes < 1:
        raise RankInputError("min_votes must be >= 1")
    if permutations < 0:
        raise RankInputError("permutations must be >= 0")
    try:
        grouping = group_labels(table, by)
    except GroupingError as e:
        raise RankInputError(str(e)) from None
    gen = rng if rng is not None else np.random.default_rng(0)
    b = _restrict(pooled, items)
    names, codes, sizes, pooled_groups = split_groups(grouping.labels, b, min_votes)
    notes: list[str] = []
    if grouping.missing:
        notes.append(f"{grouping.missing} row(s) without a value of {grouping.field}: group (none)")
    boards: list[GroupBoard] = []
    kept: list[int] = []
    for q, name in enumerate(names):
        sub = _subset(b, codes == q)
        try:
            gb = group_board(name, sub, config, make_intervals, scale, anchor)
        except RankInputError as e:
            pooled_groups.append(
                {"group": name, "battles": len(sub), "reason": f"cannot be ranked: {e}"}
            )
            continue
        boards.append(gb)
        kept.append(q)
    remap = np.full(len(names) + 1, -1, dtype=np.int64)
    remap[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    gcode = np.where(codes >= 0, remap[codes], -1)
    tested = gcode >= 0
    test: dict[str, Any] | None = None
    if len(boards) >= 2:
        ties = "drop" if config.tie_policy() == "drop" else "half"
        if config.model != "bt":
            notes.append(
                f"the heterogeneity test compares Bradley-Terry strengths (ties as half a win), "
                f"not the {config.model} fit"
            )
        tb = _subset(b, tested)
        if len(tb.items) > TEST_MAX_ITEMS and permutations > 0:
            notes.append(
                f"{len(tb.items)} items > {TEST_MAX_ITEMS}: no permutations, chi-square p-value"
            )
            permutations = 0
        test = heterogeneity_test(
            tb, gcode[tested], [gb.name for gb in boards], ties, permutations, gen, level, progress
        )
    else:
        notes.append(
            f"fewer than two groups with at least {min_votes} battles: no heterogeneity test"
        )
    diffs: list[dict[str, Any]] = []
    for q, gb in enumerate(boards):
        rest = _subset(b, gcode != q)
        try:
            rows, dn = group_differences(gb, rest, config, level, scale)
        except RankInputError as e:
            rows, dn = [], [f"group {gb.name!r}: no differences ({e})"]
        diffs += rows
        notes += dn
    summary: dict[str, Any] = {
        "by": by,
        "group_field": grouping.field,
        "min_votes": min_votes,
        "group_sizes": sizes,
        "groups": [
            {
                "group": gb.name,
                "battles": gb.battles,
                "items": len(gb.fit.items),
                "dropped_items": list(gb.fit.dropped_items),
                "prior": gb.fit.prior,
                "tie_parameter": gb.fit.tie,
                "notes": list(gb.notes),
                "leaderboard": gb.board.rows,
            }
            for gb in boards
        ],
        "pooled_groups": pooled_groups,
        "heterogeneity": test,
        "group_differences": diffs,
        "group_notes": notes,
    }
    return GroupsResult(summary, boards)
