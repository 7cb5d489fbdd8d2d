"""Pair strategies: canonical comparisons, ratings, rankings and binary feedback -> training
pairs (prompt, chosen, rejected, margin, weight, n_votes, agreement, tie, source ids).

Every function is pure (an explicit `rng` where randomness is involved) and returns a
`BuildResult(table, report)`; see docs/build.md for the strategies and their papers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.build.result import (
    UNPAIRED_SCHEMA,
    BuildResult,
    Collector,
    TiePolicy,
    text_key,
)
from prefkit.build.weights import (
    OUTCOME_ORDER,
    Decision,
    VoteModel,
    combine_aspects,
    from_posterior,
    kto_weights,
    majority,
    mean_strength,
    parse_aspect_weights,
    vote_counts,
)
from prefkit.build.weights import (
    curriculum as order_curriculum,
)
from prefkit.schema import Kind, content_id, kind_of

VoteMethod = Literal["majority", "mean-strength"]
RatingStrategy = Literal["best-vs-worst", "best-vs-random", "all-pairs", "sweet-spot"]
RankingMode = Literal["all", "adjacent", "best-vs-rest"]

VOTE_METHODS: tuple[str, ...] = ("majority", "mean-strength")
MarginFrom = Literal["votes", "scores"]
MARGIN_FROM: tuple[str, ...] = ("votes", "scores")
# fitted annotator models from prefkit.rank.aggregate, used through the VoteModel seam
MODEL_VOTE_METHODS: tuple[str, ...] = ("dawid-skene", "mace", "glad", "noisy-bt")
RATING_STRATEGIES: tuple[str, ...] = ("best-vs-worst", "best-vs-random", "all-pairs", "sweet-spot")
RANKING_MODES: tuple[str, ...] = ("all", "adjacent", "best-vs-rest")

PosteriorFn = Callable[[pa.Table, NDArray[np.int64]], NDArray[np.float64]]

_FLIP = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}


def _cols(table: pa.Table, names: list[str]) -> dict[str, list[Any]]:
    return {
        n: table.column(n).to_pylist() if n in table.column_names else [None] * table.num_rows
        for n in names
    }


def _meta(m: Any) -> dict[str, str]:
    if m is None:
        return {}
    return dict(m) if not isinstance(m, dict) else m


# ---------------------------------------------------------------------------------------
# Votes (comparisons)


def vote_groups(table: pa.Table) -> tuple[NDArray[np.int64], NDArray[np.bool_], list[list[int]]]:
    """Group comparison rows that judge the same pair and orient them.

    Key: `meta["pair_id"]` when present, else (prompt_id, aspect, the two responses, in
    either order); a response is its normalized text and its model name (so two models that
    wrote the same text are different responses), the model name alone when there is no text. Returns the group index per
    row, whether each row is flipped relative to its group's first row, and the rows per group.
    """
    c = _cols(
        table, ["prompt_id", "aspect", "response_a", "response_b", "model_a", "model_b", "meta"]
    )
    keys: dict[tuple[Any, ...], int] = {}
    ref_a: list[str] = []
    groups: list[list[int]] = []
    gidx = np.zeros(table.num_rows, dtype=np.int64)
    flip = np.zeros(table.num_rows, dtype=np.bool_)
    cache: dict[str, str] = {}
    for i in range(table.num_rows):
        ia = text_key(c["response_a"][i], cache)
        ib = text_key(c["response_b"][i], cache)
        ida = f"{ia}\0{c['model_a'][i]}" if ia is not None else f"\0model:{c['model_a'][i]}"
        idb = f"{ib}\0{c['model_b'][i]}" if ib is not None else f"\0model:{c['model_b'][i]}"
        pair_id = _meta(c["meta"][i]).get("pair_id")
        if pair_id is not None:
            key: tuple[Any, ...] = ("pair_id", pair_id, c["aspect"][i])
        else:
            key = ("text", c["prompt_id"][i], c["aspect"][i], min(ida, idb), max(ida, idb))
        g = keys.get(key)
        if g is None:
            g = keys[key] = len(groups)
            groups.append([])
            ref_a.append(ida)
        groups[g].append(i)
        gidx[i] = g
        flip[i] = ida != ref_a[g]
    return gidx, flip, groups


def orient(table: pa.Table, flipped: NDArray[np.bool_]) -> pa.Table:
    """Swap a/b (responses, models, outcome, strength, shown_first) on the flipped rows."""
    mask = pa.array(flipped)
    cols: dict[str, Any] = {}
    swaps = {
        "response_a": "response_b",
        "response_b": "response_a",
        "model_a": "model_b",
        "model_b": "model_a",
    }
    for name in table.column_names:
        col = table.column(name)
        if name in swaps and swaps[name] in table.column_names:
            col = pc.if_else(mask, table.column(swaps[name]), col)
        elif name in ("outcome", "shown_first"):
            vals = col.to_pylist()
            col = pa.array(
                [
                    _FLIP.get(v, v) if f and v is not None else v
                    for v, f in zip(vals, flipped.tolist(), strict=True)
                ],
                type=col.type,
            )
        elif name == "strength":
            col = pc.if_else(mask, pc.subtract(1.0, col), col)
        cols[name] = col
    return pa.table(cols, schema=table.schema)


def pairs_from_votes(
    table: pa.Table,
    method: VoteMethod | VoteModel | PosteriorFn = "majority",
    ties: TiePolicy = "drop",
    min_agreement: float = 0.0,
    min_margin: float | None = None,
    margin_from: MarginFrom = "votes",
) -> BuildResult:
    """One pair per group of votes on the same (prompt, response pair).

    `method`: `majority` (strict majority of a/b/tie/both_bad; no strict majority -> dropped
    `no_majority`; weight = agreement), `mean-strength` (mean graded preference, strength
    1 = a; outcome used where strength is null; both_bad votes ignored), or a fitted annotator
    model: any `VoteModel` (`.posteriors(oriented_votes, group) -> (n_groups, 4)`) or a
    function with that signature (label = argmax posterior; agreement = weight = its mass).
    Groups whose agreement < `min_agreement` are dropped `below_agreement`; with `min_margin`
    pairs whose vote margin is smaller are dropped `below_margin`. The pair keeps the `meta`
    entries its votes share (e.g. `pair_id`). `margin_from="scores"`: the margin is the
    chosen response's score minus the rejected one's (`meta.score_a` / `meta.score_b`, as the
    TRL reader keeps H4 ultrafeedback_binarized's scores; mean over the group's votes), the
    absolute difference for ties; groups without scores get no margin (`no_scores`).
    """
    if margin_from not in MARGIN_FROM:
        raise ValueError(f"margin_from must be one of {MARGIN_FROM}, got {margin_from!r}")
    if kind_of(table) is not Kind.COMPARISONS:
        raise ValueError("pairs_from_votes needs a comparisons table")
    gidx, flipped, groups = vote_groups(table)
    c = _cols(
        table,
        [
            "id",
            "prompt",
            "prompt_id",
            "response_a",
            "response_b",
            "model_a",
            "model_b",
            "outcome",
            "strength",
            "source",
            "aspect",
            "meta",
        ],
    )
    name = (
        method if isinstance(method, str) else str(getattr(method, "name", type(method).__name__))
    )
    col = Collector(
        "votes",
        table.num_rows,
        ties,
        {"method": name, "min_agreement": min_agreement, "min_margin": min_margin},
    )
    post: NDArray[np.float64] | None = None
    if not isinstance(method, str):
        oriented = orient(table, flipped)
        fn = method.posteriors if isinstance(method, VoteModel) else method
        post = np.asarray(fn(oriented, gidx), dtype=np.float64)
        if post.shape != (len(groups), len(OUTCOME_ORDER)):
            raise ValueError(
                f"vote model returned shape {post.shape}, "
                f"expected {(len(groups), len(OUTCOME_ORDER))}"
            )
    elif method not in VOTE_METHODS:
        raise ValueError(f"method must be one of {VOTE_METHODS} or a VoteModel, got {method!r}")
    no_scores = 0
    for g, rows in enumerate(groups):
        outs = [_FLIP[c["outcome"][i]] if flipped[i] else c["outcome"][i] for i in rows]
        dec: Decision
        if post is not None:
            dec = from_posterior(post[g])
        elif method == "majority":
            dec = majority(vote_counts(outs))
        else:
            s = []
            for i, o in zip(rows, outs, strict=True):
                st = c["strength"][i]
                if st is not None:
                    s.append(1.0 - st if flipped[i] else st)
                elif o != "both_bad":
                    s.append({"a": 1.0, "b": 0.0, "tie": 0.5}[o])
            dec = mean_strength(np.asarray(s, dtype=np.float64))
        r0 = rows[0]
        shared = _meta(c["meta"][r0])
        for i in rows[1:]:
            other = _meta(c["meta"][i])
            shared = {k: v for k, v in shared.items() if other.get(k) == v}
        margin: float | None = dec.margin
        if margin_from == "scores":
            d = _score_difference([c["meta"][i] for i in rows], flipped[np.asarray(rows)])
            if d is None:
                no_scores += 1
            margin = (
                None
                if d is None
                else (-d if dec.label == "b" else abs(d) if dec.label == "tie" else d)
            )
        col.offer(
            prompt=c["prompt"][r0],
            prompt_id=c["prompt_id"][r0],
            a=c["response_b"][r0] if flipped[r0] else c["response_a"][r0],
            b=c["response_a"][r0] if flipped[r0] else c["response_b"][r0],
            model_a=c["model_b"][r0] if flipped[r0] else c["model_a"][r0],
            model_b=c["model_a"][r0] if flipped[r0] else c["model_b"][r0],
            winner=dec.label,
            rows=rows,
            source_ids=[c["id"][i] for i in rows],
            margin=margin,
            weight=dec.weight,
            n_votes=len(rows),
            agreement=dec.agreement,
            min_agreement=min_agreement if min_agreement > 0 else None,
            min_margin=min_margin,
            source=c["source"][r0],
            aspect=c["aspect"][r0],
            meta=shared or None,
        )
    col.extra["groups"] = len(groups)
    col.extra["votes_per_group"] = _histogram([len(r) for r in groups])
    if margin_from == "scores":
        col.extra["no_scores"] = no_scores
    return col.result()


def _score_difference(metas: list[Any], flipped: NDArray[np.bool_]) -> float | None:
    """Mean of score_a - score_b over votes with both scores, in the group's orientation."""
    diffs = []
    for m, f in zip(metas, flipped.tolist(), strict=True):
        meta = _meta(m)
        try:
            d = float(meta["score_a"]) - float(meta["score_b"])
        except (KeyError, ValueError):
            continue
        diffs.append(-d if f else d)
    return float(np.mean(diffs)) if diffs else None


def _histogram(values: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in sorted(values):
        out[str(v)] = out.get(str(v), 0) + 1
    return out


# ---------------------------------------------------------------------------------------
# Ratings


@dataclass
class _Response:
    key: str
    messages: Any
    model: str | None
    rows: list[int]
    scores: dict[str | None, list[float]]
    score: float = 0.0


def pairs_from_ratings(
    table: pa.Table,
    strategy: RatingStrategy = "best-vs-worst",
    min_margin: float | None = None,
    aspect_weights: str | Mapping[str, float] | None = None,
    rng: np.random.Generator | None = None,
    ties: TiePolicy = "drop",
) -> BuildResult:
    """Pairs from per-response scores (Likert, multi-aspect, or a reward model's score).

    Rows are grouped by prompt_id; rows with the same normalized response text are one
    response (scores averaged per aspect, then combined: `aspect_weights` {aspect: w} gives
    Σw·s/Σw, else the overall score or the mean over aspects). margin = score difference.

    - `best-vs-worst`: highest vs lowest score (UltraFeedback binarization).
    - `best-vs-random`: highest vs one other response drawn with `rng`.
    - `all-pairs`: every pair of responses; keep those with |difference| >= `min_margin`.
    - `sweet-spot`: highest vs the response whose score is nearest μ − 2σ of the prompt's
      scores (Xiao et al., 2025, "Finding the Sweet Spot").
    Equal scores are ties (tie policy); a prompt with one response counts once as
    `single_response`.
    """
    if kind_of(table) is not Kind.RATINGS:
        raise ValueError("pairs_from_ratings needs a ratings table")
    if strategy not in RATING_STRATEGIES:
        raise ValueError(f"strategy must be one of {RATING_STRATEGIES}, got {strategy!r}")
    weights = parse_aspect_weights(aspect_weights)
    gen = rng if rng is not None else np.random.default_rng(0)
    c = _cols(
        table, ["id", "prompt", "prompt_id", "response", "model", "score", "source", "aspect"]
    )
    col = Collector(
        "ratings",
        table.num_rows,
        ties,
        {"strategy": strategy, "min_margin": min_margin, "aspect_weights": weights},
    )
    prompts: dict[str, dict[str, _Response]] = {}
    first_row: dict[str, int] = {}
    for i in range(table.num_rows):
        k = text_key(c["response"][i])
        if k is None:
            col.unused_row(i, "missing_text")
            continue
        pid = c["prompt_id"][i]
        first_row.setdefault(pid, i)
        resp = prompts.setdefault(pid, {}).get(k)
        if resp is None:
            resp = prompts[pid][k] = _Response(k, c["response"][i], c["model"][i], [], {})
        resp.rows.append(i)
        resp.scores.setdefault(c["aspect"][i], []).append(float(c["score"][i]))
    merged = 0
    for pid, responses in prompts.items():
        ok: list[_Response] = []
        for r in responses.values():
            merged += len(r.rows) - 1
            s = combine_aspects({a: float(np.mean(v)) for a, v in r.scores.items()}, weights)
            if s is None:
                for i in r.rows:
                    col.unused_row(i, "missing_aspect")
                continue
            r.score = s
            ok.append(r)
        ok.sort(key=lambda r: (-r.score, r.key))
        r0 = first_row[pid]
        if len(ok) < 2:
            col.drop("single_response", [i for r in ok for i in r.rows])
            continue

        best = ok[0]
        chosen_pairs: list[tuple[_Response, _Response]]
        if strategy == "best-vs-worst":
            chosen_pairs = [(best, ok[-1])]
        elif strategy == "best-vs-random":
            chosen_pairs = [(best, ok[1 + int(gen.integers(len(ok) - 1))])]
        elif strategy == "all-pairs":
            chosen_pairs = [(ok[a], ok[b]) for a in range(len(ok)) for b in range(a + 1, len(ok))]
        else:
            spot = sweet_spot_index(
                np.array([r.score for r in ok[1:]]), np.array([r.score for r in ok])
            )
            chosen_pairs = [(best, ok[1 + spot])]
        for x, y in chosen_pairs:
            diff = x.score - y.score
            col.offer(
                prompt=c["prompt"][r0],
                prompt_id=pid,
                a=x.messages,
                b=y.messages,
                key_a=x.key,
                key_b=y.key,
                model_a=x.model,
                model_b=y.model,
                winner="tie" if diff == 0 else ("a" if diff > 0 else "b"),
                rows=x.rows + y.rows,
                source_ids=[c["id"][i] for i in x.rows + y.rows],
                margin=abs(diff),
                n_votes=len(x.rows) + len(y.rows),
                min_margin=min_margin,
                source=c["source"][r0],
                aspect=None if weights else c["aspect"][r0],
            )
    col.extra["prompts"] = len(prompts)
    col.extra["rows_merged_same_response"] = merged
    return col.result()


def sweet_spot_index(candidates: NDArray[np.float64], all_scores: NDArray[np.float64]) -> int:
    """Index into `candidates` of the score nearest μ − 2σ of `all_scores` (σ: population).

    Ties in distance go to the lower score, then the first.
    """
    target = float(all_scores.mean() - 2.0 * all_scores.std())
    dist = np.abs(candidates - target)
    best = np.flatnonzero(dist == dist.min())
    return int(best[np.argmin(candidates[best])])


# ---------------------------------------------------------------------------------------
# Rankings


def ranking_candidates(ranks: list[int], mode: RankingMode) -> list[tuple[int, int]]:
    """Index pairs a ranking implies (ties included as pairs with equal rank).

    `all`: every pair; `adjacent`: pairs within a rank level and between consecutive levels;
    `best-vs-rest`: the best level against every other entry (and within the best level).
    """
    n = len(ranks)
    if mode == "all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    levels = sorted(set(ranks))
    nxt = {lv: levels[k + 1] if k + 1 < len(levels) else None for k, lv in enumerate(levels)}
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            ri, rj = ranks[i], ranks[j]
            if mode == "adjacent":
                if ri == rj or nxt[min(ri, rj)] == max(ri, rj):
                    out.append((i, j))
            elif min(ri, rj) == levels[0]:
                out.append((i, j))
    return out


def pairs_from_rankings(
    table: pa.Table,
    mode: RankingMode = "all",
    curriculum: bool = False,
    ties: TiePolicy = "drop",
    min_margin: float | None = None,
) -> BuildResult:
    """Pairs implied by rankings (1 = best; equal ranks are ties inside the ranking).

    margin = rank gap. Ties inside a ranking follow the tie policy (default: dropped and
    counted as `tie_dropped`). `curriculum=True` orders pairs from easy (large rank gap) to
    hard (Curry-DPO, Pattnaik et al., 2024).
    """
    if kind_of(table) is not Kind.RANKINGS:
        raise ValueError("pairs_from_rankings needs a rankings table")
    if mode not in RANKING_MODES:
        raise ValueError(f"mode must be one of {RANKING_MODES}, got {mode!r}")
    c = _cols(
        table, ["id", "prompt", "prompt_id", "responses", "models", "ranks", "source", "aspect"]
    )
    col = Collector(
        "rankings",
        table.num_rows,
        ties,
        {"mode": mode, "curriculum": curriculum, "min_margin": min_margin},
    )
    for i in range(table.num_rows):
        ranks = [int(r) for r in c["ranks"][i]]
        responses = c["responses"][i] or [None] * len(ranks)
        models = c["models"][i] or [None] * len(ranks)
        keys = [text_key(r) for r in responses]
        for x, y in ranking_candidates(ranks, mode):
            gap = ranks[y] - ranks[x]
            col.offer(
                prompt=c["prompt"][i],
                prompt_id=c["prompt_id"][i],
                a=responses[x],
                b=responses[y],
                key_a=keys[x],
                key_b=keys[y],
                model_a=models[x],
                model_b=models[y],
                winner="tie" if gap == 0 else ("a" if gap > 0 else "b"),
                rows=[i],
                source_ids=[c["id"][i]],
                margin=float(abs(gap)),
                n_votes=1,
                min_margin=min_margin,
                source=c["source"][i],
                aspect=c["aspect"][i],
                meta={
                    "rank_chosen": str(min(ranks[x], ranks[y])),
                    "rank_rejected": str(max(ranks[x], ranks[y])),
                },
            )
    res = col.result()
    return order_curriculum(res) if curriculum else res


# ---------------------------------------------------------------------------------------
# Binary (thumbs)


def pairs_from_binary(table: pa.Table, ties: TiePolicy = "drop") -> BuildResult:
    """Pairs where the same prompt has a thumbs-up and a thumbs-down response (every up × down
    combination); a prompt with only one label counts once as `no_opposite_label`. The report
    carries the desirable:undesirable ratio and KTO class weights."""
    if kind_of(table) is not Kind.BINARY:
        raise ValueError("pairs_from_binary needs a binary table")
    c = _cols(
        table, ["id", "prompt", "prompt_id", "response", "model", "label", "source", "aspect"]
    )
    col = Collector("binary", table.num_rows, ties, {})
    prompts: dict[str, tuple[list[int], list[int]]] = {}
    for i in range(table.num_rows):
        if text_key(c["response"][i]) is None:
            col.unused_row(i, "missing_text")
            continue
        up, down = prompts.setdefault(c["prompt_id"][i], ([], []))
        (up if c["label"][i] else down).append(i)
    for pid, (up, down) in prompts.items():
        if not up or not down:
            col.drop("no_opposite_label", up + down)
            continue
        for u in up:
            for d in down:
                col.offer(
                    prompt=c["prompt"][u],
                    prompt_id=pid,
                    a=c["response"][u],
                    b=c["response"][d],
                    model_a=c["model"][u],
                    model_b=c["model"][d],
                    winner="a",
                    rows=[u, d],
                    source_ids=[c["id"][u], c["id"][d]],
                    margin=1.0,
                    n_votes=2,
                    source=c["source"][u],
                    aspect=c["aspect"][u],
                )
    labels = [bool(x) for x in c["label"]]
    col.extra["kto"] = kto_weights(sum(labels), len(labels) - sum(labels))
    return col.result()


def unpaired_from_binary(table: pa.Table) -> BuildResult:
    """KTO unpaired rows (prompt, completion, label) from thumbs; rows without text dropped.

    The report has the desirable:undesirable ratio and suggested KTO class weights."""
    if kind_of(table) is not Kind.BINARY:
        raise ValueError("unpaired_from_binary needs a binary table")
    c = _cols(table, ["id", "prompt", "prompt_id", "response", "model", "label", "source"])
    rows = []
    dropped = 0
    for i in range(table.num_rows):
        if text_key(c["response"][i]) is None:
            dropped += 1
            continue
        rows.append(
            {
                "id": c["id"][i],
                "prompt": c["prompt"][i],
                "prompt_id": c["prompt_id"][i],
                "completion": c["response"][i],
                "label": bool(c["label"][i]),
                "model": c["model"][i],
                "source": c["source"][i],
                "source_ids": [c["id"][i]],
            }
        )
    return _unpaired_result("binary-unpaired", table.num_rows, rows, {"missing_text": dropped})


def unpaired_from_pairs(pairs: pa.Table) -> BuildResult:
    """KTO unpaired rows from a pairs table: chosen -> desirable, rejected -> undesirable.

    Tie-flagged pairs give no label (counted `tie`); the same (prompt, completion, label) is
    written once (counted `duplicate`)."""
    rows = []
    seen: set[tuple[str, str, bool]] = set()
    counts = {"tie": 0, "duplicate": 0}
    for r in pairs.to_pylist():
        if r["tie"]:
            counts["tie"] += 1
            continue
        for which, label in (("chosen", True), ("rejected", False)):
            key = (r["prompt_id"], text_key(r[which]) or "", label)
            if key in seen:
                counts["duplicate"] += 1
                continue
            seen.add(key)
            rows.append(
                {
                    "id": content_id("unpaired", *key),
                    "prompt": r["prompt"],
                    "prompt_id": r["prompt_id"],
                    "completion": r[which],
                    "label": label,
                    "model": r[f"{which}_model"],
                    "source": r["source"],
                    "source_ids": r["source_ids"],
                }
            )
    return _unpaired_result("pairs-unpaired", pairs.num_rows, rows, counts)


def _unpaired_result(
    builder: str, rows_in: int, rows: list[dict[str, Any]], dropped: dict[str, int]
) -> BuildResult:
    table = pa.Table.from_pylist(rows, schema=UNPAIRED_SCHEMA)
    n_up = sum(1 for r in rows if r["label"])
    report = {
        "builder": builder,
        "rows_in": rows_in,
        "rows_out": len(rows),
        "pairs_out": 0,
        "dropped": dropped,
        "kto": kto_weights(n_up, len(rows) - n_up),
    }
    return BuildResult(table, report)


# ---------------------------------------------------------------------------------------
# Dispatch


BUILDER_OF_STRATEGY: dict[str, Kind] = {
    **{m: Kind.COMPARISONS for m in VOTE_METHODS + MODEL_VOTE_METHODS},
    **{s: Kind.RATINGS for s in RATING_STRATEGIES},
    **{m: Kind.RANKINGS for m in RANKING_MODES},
    "binary": Kind.BINARY,
}
DEFAULT_STRATEGY: dict[Kind, str] = {
    Kind.COMPARISONS: "majority",
    Kind.RATINGS: "best-vs-worst",
    Kind.RANKINGS: "all",
    Kind.BINARY: "binary",
}


def build_pairs(
    table: pa.Table,
    strategy: str | None = None,
    ties: TiePolicy = "drop",
    min_margin: float | None = None,
    min_agreement: float = 0.0,
    aspect_weights: str | Mapping[str, float] | None = None,
    curriculum: bool = False,
    rng: np.random.Generator | None = None,
    margin_from: MarginFrom = "votes",
) -> BuildResult:
    """Pick the builder from the strategy (or the table's kind) and run it (`margin_from`:
    see `pairs_from_votes`; votes only)."""
    kind = kind_of(table)
    s = strategy or DEFAULT_STRATEGY.get(kind)
    if s is None or s not in BUILDER_OF_STRATEGY:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(BUILDER_OF_STRATEGY)}")
    if BUILDER_OF_STRATEGY[s] is not kind:
        raise ValueError(
            f"strategy {s!r} needs {BUILDER_OF_STRATEGY[s].value}, the input is {kind.value}"
        )
    if kind is Kind.COMPARISONS:
        method: Any = s
        if s in MODEL_VOTE_METHODS:
            from prefkit.rank.aggregate import Aggregator

            method = Aggregator(s)  # type: ignore[arg-type]
        res = pairs_from_votes(table, method, ties, min_agreement, min_margin, margin_from)
    elif kind is Kind.RATINGS:
        res = pairs_from_ratings(table, s, min_margin, aspect_weights, rng, ties)  # type: ignore[arg-type]
    elif kind is Kind.RANKINGS:
        res = pairs_from_rankings(table, s, False, ties, min_margin)  # type: ignore[arg-type]
    else:
        res = pairs_from_binary(table, ties)
    return order_curriculum(res) if curriculum else res
