"""One call from a canonical comparisons table to a leaderboard summary (what `prefkit rank`
prints with --json): fit, intervals, optional style control and baselines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from prefkit.rank import baselines as base
from prefkit.rank.bt import Fit, Model, Problem, RankConfig, TiePolicy, fit_problem, problem
from prefkit.rank.ci import (
    Intervals,
    auto_method,
    bootstrap,
    no_intervals,
    normal_intervals,
    one_step,
)
from prefkit.rank.data import (
    Battles,
    Counted,
    Counts,
    RankInputError,
    aggregate,
    battles_from_table,
)
from prefkit.rank.groups import GroupsResult, rank_groups
from prefkit.rank.leaderboard import Leaderboard, Scale, leaderboard
from prefkit.rank.style import (
    style_coefficients,
    style_features,
    style_problem,
    texts_from_table,
)

CIKind = Literal["auto", "bootstrap", "one-step", "sandwich", "hessian", "none"]
CI_KINDS: tuple[str, ...] = ("auto", "bootstrap", "one-step", "sandwich", "hessian", "none")


@dataclass(frozen=True)
class RankOptions:
    model: Model = "bt"
    ties: TiePolicy | None = None
    ci: CIKind = "auto"
    rounds: int = 1000
    level: float = 0.95
    scale: Scale = "elo"
    anchor: tuple[str, float] | None = None
    style_control: bool = False
    prior: float | None = None
    components: Literal["refuse", "largest"] = "refuse"
    weight_key: str | None = None
    baselines: bool = False
    seed: int = 0
    by: str | None = None  # group leaderboards and the heterogeneity test (rank.groups)
    min_votes: int = 30
    permutations: int = 1000

    def config(self) -> RankConfig:
        return RankConfig(self.model, self.ties, self.prior, components=self.components)


@dataclass(frozen=True)
class RankResult:
    summary: dict[str, Any]
    board: Leaderboard
    fit: Fit
    raw_board: Leaderboard | None
    raw_fit: Fit | None
    battles: Battles | None  # None when counted by the Ray engine (no per-battle arrays)
    counts: Counts
    groups: GroupsResult | None = None


def interval_method(p: Problem, o: RankOptions) -> tuple[str, str]:
    """The interval method used for `p` (resolving `auto`) and the reason, one sentence."""
    if o.ci not in CI_KINDS:
        raise RankInputError(f"unknown interval method {o.ci!r}; choose from {CI_KINDS}")
    if o.ci == "auto":
        return auto_method(p)
    return o.ci, "requested explicitly"


def intervals(
    p: Problem,
    f: Fit,
    o: RankOptions,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> Intervals:
    if not 0.0 < o.level < 1.0:
        raise RankInputError(f"level must be between 0 and 1, got {o.level}")
    method, _ = interval_method(p, o)
    if method == "bootstrap":
        return bootstrap(p, f, o.rounds, o.level, rng, progress=progress)
    if method == "one-step":
        return one_step(p, f, o.rounds, o.level, rng, progress=progress)
    if method == "none":
        return no_intervals(f)
    return normal_intervals(p, f, method, o.level, rng=rng)


def rank_table(
    table: pa.Table, o: RankOptions, progress: Callable[[int], None] | None = None
) -> RankResult:
    """Fit, intervals and leaderboard(s) for a canonical comparisons table."""
    if o.by is not None and o.style_control:
        raise RankInputError("group leaderboards (--by) do not combine with --style-control")
    b = battles_from_table(table, o.weight_key)
    return _rank(aggregate(b), len(b), b.skipped, o, progress, table, b)


RAY_UNSUPPORTED = ("--by", "--style-control", "--baselines", "--weight")


def rank_counted(
    counted: Counted, o: RankOptions, progress: Callable[[int], None] | None = None
) -> RankResult:
    """The leaderboard from battle counts made elsewhere (the Ray engine's grouped counting):
    the same fit, intervals and summary as `rank_table` on the rows they were counted from.
    Options that need the single battles (`by`, style control, baselines, weights) raise."""
    used = [
        flag
        for flag, on in zip(
            RAY_UNSUPPORTED,
            (o.by is not None, o.style_control, o.baselines, o.weight_key is not None),
            strict=True,
        )
        if on
    ]
    if used:
        raise ValueError(
            f"{', '.join(used)} need(s) every single battle: use --engine local "
            "(--engine ray counts battles per pair)"
        )
    return _rank(counted.counts, counted.battles, counted.skipped, o, progress, None, None)


def _rank(
    counts: Counts,
    n_battles: int,
    skipped: dict[str, int],
    o: RankOptions,
    progress: Callable[[int], None] | None,
    table: pa.Table | None,
    b: Battles | None,
) -> RankResult:
    rng = np.random.default_rng(o.seed)
    p = problem(counts, o.config())
    f = fit_problem(p)
    method, reason = interval_method(p, o)
    iv = intervals(p, f, o, rng, progress)
    board = leaderboard(f, iv, counts, o.scale, o.anchor)
    raw_board: Leaderboard | None = None
    raw_fit: Fit | None = None
    style: dict[str, float] | None = None
    if o.style_control:
        assert table is not None and b is not None
        ta, tb = texts_from_table(table, b.rows.tolist())
        z = style_features(ta, tb)
        sp_ = style_problem(b, z, o.config())
        sf = fit_problem(sp_)
        method, reason = interval_method(sp_, o)
        siv = intervals(sp_, sf, o, rng, progress)
        raw_board, raw_fit = board, f
        board = leaderboard(sf, siv, counts, o.scale, o.anchor)
        f = sf
        style = style_coefficients(sp_, sf.gamma)
    summary: dict[str, Any] = {
        "model": o.model,
        "scale": o.scale,
        "ties": p.ties,
        "ci": method,
        "ci_requested": o.ci,
        "ci_method_reason": reason,
        "level": o.level,
        "rounds": o.rounds if method in ("bootstrap", "one-step") else 0,
        "battles": n_battles,
        "items": len(f.items),
        "skipped": dict(skipped),
        "dropped_items": list(f.dropped_items),
        "prior": f.prior,
        "tie_parameter": f.tie,
        "loglik": f.loglik,
        "iterations": f.iterations,
        "notes": list(f.notes) + _skip_notes(skipped),
        "anchor": {"item": o.anchor[0], "score": o.anchor[1]} if o.anchor else None,
        "leaderboard": board.rows,
    }
    if style is not None and raw_board is not None:
        summary["style_control"] = True
        summary["style_coefficients"] = style
        summary["leaderboard_raw"] = raw_board.rows
    if o.baselines:
        assert b is not None
        elo = base.elo(b)
        awr = base.average_win_rate(counts)
        summary["baselines"] = {
            "elo": dict(zip(counts.items, elo.tolist(), strict=True)),
            "average_win_rate": dict(zip(counts.items, awr.tolist(), strict=True)),
        }
    groups = None
    if o.by is not None:
        assert table is not None and b is not None
        groups = rank_groups(
            table, b, f.items, o.by, o.config(),
            lambda gp, gf: intervals(gp, gf, o, rng, progress),
            o.scale, o.anchor, o.level, o.min_votes, o.permutations, rng, progress,
        )  # fmt: skip
        summary.update(groups.summary)
        summary["notes"] += groups.summary["group_notes"]
    return RankResult(summary, board, f, raw_board, raw_fit, b, counts, groups)


def _skip_notes(skipped: dict[str, int]) -> list[str]:
    out = []
    if skipped.get("self_battle"):
        out.append(
            f"{skipped['self_battle']} self-battle(s) (the same item on both sides) skipped: "
            "they say nothing about the ranking"
        )
    if skipped.get("missing_item"):
        out.append(f"{skipped['missing_item']} row(s) without model_a/model_b skipped")
    return out
