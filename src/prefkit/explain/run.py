"""`explain_table`: every part of `prefkit explain` on one comparisons table, and the files.

Parts, in order: feature effects (always), per-group effects and the test of whether groups
differ (`by`), how annotators/groups differ (hierarchical weights, PCA basis, clusters),
learned directions (MiniLM + sparse dictionary; needs the [train] extra), principles (needs an
LLM endpoint). A part that cannot run says why in `summary["notes"]` and in its own section.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.explain.data import (
    BY_CHOICES,
    ExplainInputError,
    Votes,
    table_batches,
    votes_from_batches,
)
from prefkit.explain.effects import Design, EffectOptions, design, feature_effects, group_ids

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

PRINCIPLES_HINT = (
    "principles: skipped (test your own with --principles FILE, or let an LLM propose them "
    "with --propose N; both need --endpoint URL --model M)"
)


@dataclass(frozen=True)
class JudgeSpec:
    endpoint: str
    model: str
    cache_dir: Path
    concurrency: int = 8
    api_key_env: str = "OPENAI_API_KEY"
    max_calls: int | None = None


@dataclass(frozen=True)
class ExplainOptions:
    by: str | None = None
    group_key: str = "group"
    effects: EffectOptions = field(default_factory=EffectOptions)
    directions: int = 32  # 0 = skip
    top_k: int = 4
    method: str = "sae"
    embed_cache: Path | None = None
    principles: list[str] | None = None
    propose: int = 0
    judge: JudgeSpec | None = None
    examples: int = 3
    context: int = 0  # prompt-embedding components for the per-annotator basis (0 = off)
    context_features: tuple[str, ...] = ("refusal",)


Status = Callable[[str, int], Callable[[int], None]]  # (description, total) -> advance


def _noop(desc: str, total: int) -> Callable[[int], None]:
    return lambda k: None


@dataclass
class ExplainResult:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def _people_groups(v: Votes, opts: ExplainOptions) -> tuple[str | None, str | None]:
    """Which grouping the annotator basis uses: `by`, else annotators when there are enough."""
    if opts.by is not None:
        return opts.by, None
    names = {a for a in v.by["annotator"] if a is not None}
    if len(names) < 3:
        return None, (
            f"how people differ: skipped ({len(names)} named annotator(s); the basis needs at "
            "least 3 with votes, or --by source|aspect|group)"
        )
    return "annotator", None


def explain_table(table: pa.Table, opts: ExplainOptions, status: Status = _noop) -> ExplainResult:
    """All parts of explain on a canonical comparisons table (see module doc)."""
    return explain_batches(table_batches(table), opts, status)


def needs_text(opts: ExplainOptions) -> bool:
    """Whether a part after the feature pass reads the texts (directions, principles, the
    prompts of the annotator basis's `--context`)."""
    return opts.directions > 0 or opts.judge is not None or opts.context > 0


def explain_batches(
    batches: Iterable[pa.Table], opts: ExplainOptions, status: Status = _noop
) -> ExplainResult:
    """`explain_table` on the batches of one comparisons table (a canonical Parquet file read
    batch by batch): the feature pass runs per batch and, unless `needs_text`, each batch's
    text is dropped after it (memory: the feature matrices, not the text)."""
    from threadpoolctl import threadpool_limits

    # the matrices are small (p <= a few dozen): threaded BLAS costs more than it saves,
    # many times more on a busy machine
    with threadpool_limits(1):
        return _explain(batches, opts, status)


def _explain(batches: Iterable[pa.Table], opts: ExplainOptions, status: Status) -> ExplainResult:
    if opts.by is not None and opts.by not in BY_CHOICES:
        raise ExplainInputError(f"--by must be one of {', '.join(BY_CHOICES)}")
    timings: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    v = votes_from_batches(batches, opts.group_key, needs_text(opts))
    if v.skipped.get("missing_text"):
        notes.append(
            f"{v.skipped['missing_text']} rows without response text left out (identity-only)"
        )
    if v.skipped.get("both_bad"):
        notes.append(f"{v.skipped['both_bad']} both_bad votes left out (no a-versus-b preference)")
    by_info: tuple[I64, list[str], dict[str, int]] | None = None
    if opts.by is not None:
        by_info = _check_by(v, opts.by, opts.effects.min_votes, opts.group_key)
    tick = status("features", 1)
    d = design(v)
    tick(1)
    timings["features"] = time.perf_counter() - t0
    if d.dropped:
        notes.append("constant in this data (left out): " + ", ".join(d.dropped))
    if not d.names:
        raise ExplainInputError("every feature is constant in this data: nothing to explain")
    from prefkit.explain.effects import clusters

    units, unit_note = clusters(v)
    if unit_note:
        notes.append(unit_note)
    t1 = time.perf_counter()
    eo = opts.effects
    total = eo.folds + eo.stability_pairs + 2 * eo.rounds
    eff = feature_effects(v, d, eo, status("feature effects", total))
    timings["effects"] = time.perf_counter() - t1
    rows = [r | {"type": "feature"} for r in eff.rows]
    summary: dict[str, Any] = {
        "input": {
            "rows": v.rows_in,
            "votes_used": v.n,
            "skipped": v.skipped,
            "annotators": len({a for a in v.by["annotator"] if a is not None}),
            "sources": sorted({s for s in v.by["source"] if s is not None})[:20],
        },
        "features": eff.summary,
        "top_effects": [_brief(r) for r in eff.rows[:10]],
    }
    if opts.directions > 0:
        t2 = time.perf_counter()
        try:
            dres = _directions(v, d, units, opts, status)
        except ImportError as e:
            notes.append(f"learned directions: skipped ({e})")
            summary["directions"] = {"skipped": str(e)}
        else:
            summary["directions"] = dres.summary
            rows += dres.rows
        timings["directions"] = time.perf_counter() - t2
    else:
        summary["directions"] = {"skipped": "--directions 0"}
    # per group
    if by_info is not None and opts.by is not None:
        t3 = time.perf_counter()
        grows, gsum = _groups(v, d, eff, opts.by, by_info, eo, status)
        rows += grows
        summary["groups"] = gsum
        timings["groups"] = time.perf_counter() - t3
    # how people differ
    who, why = _people_groups(v, opts)
    if who is None:
        notes.append(str(why))
        summary["people"] = {"skipped": why}
    else:
        t4 = time.perf_counter()
        summary["people"] = _people(v, d, eff, who, opts, status, notes)
        timings["people"] = time.perf_counter() - t4
    # principles
    if opts.judge is None:
        notes.append(PRINCIPLES_HINT)
        summary["principles"] = {"skipped": PRINCIPLES_HINT}
    else:
        t5 = time.perf_counter()
        from prefkit.explain.llm import principles_part

        summary["principles"] = principles_part(v, opts, status, notes)
        timings["principles"] = time.perf_counter() - t5
    summary["notes"] = notes
    summary["timings_s"] = {k: round(x, 3) for k, x in timings.items()}
    return ExplainResult(rows, summary)


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    return {
        k: r[k]
        for k in (
            "feature", "label", "coef", "ci_low", "ci_high", "coef_no_length",
            "ci_low_no_length", "ci_high_no_length", "selection_freq", "selected",
        )
    }  # fmt: skip


def _check_by(
    v: Votes, by: str, min_votes: int, group_key: str
) -> tuple[I64, list[str], dict[str, int]]:
    vals = {s for s in v.by[by] if s is not None}
    what = f'meta["{group_key}"]' if by == "group" else by
    if not vals:
        raise ExplainInputError(f"--by {by}: no row has a {what} value")
    if len(vals) == 1:
        only = next(iter(vals))
        raise ExplainInputError(
            f"--by {by}: every vote has the same {what} ({only!r}): there is nothing to "
            "compare; drop --by or pick another grouping"
        )
    gid, names, small = group_ids(v, by, min_votes)
    if len(names) < 2:
        raise ExplainInputError(
            f"--by {by}: {len(vals)} groups but fewer than two have >= {min_votes} votes "
            f"(--min-votes); nothing to compare"
        )
    return gid, names, small


def _groups(
    v: Votes,
    d: Design,
    eff: Any,
    by: str,
    info: tuple[I64, list[str], dict[str, int]],
    eo: EffectOptions,
    status: Status,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-group effects (shrunk towards the pooled ones) and the heterogeneity test."""
    from scipy import stats

    from prefkit.explain.people import heterogeneity, hierarchical

    gid, names, small = info
    sel = gid >= 0
    tick = status(f"groups by {by}", 1)
    h = hierarchical(d.x[sel], v.y[sel], gid[sel], names, eff.model, eff.full)
    het = heterogeneity(
        d.x, v.y, gid, names, eff.model, eff.full, max(eo.min_votes, 5 * d.x.shape[1])
    )
    tick(1)
    z = float(stats.norm.ppf(0.5 + eo.level / 2))
    rows: list[dict[str, Any]] = []
    for g, name in enumerate(names):
        for j, f in enumerate(d.names):
            b, s = float(h.beta[g, j]), float(h.se[g, j])
            rows.append(
                {
                    "type": "feature",
                    "scope": f"{by}={name}",
                    "feature": f,
                    "coef": b,
                    "ci_low": b - z * s,
                    "ci_high": b + z * s,
                    "se": s,
                    "coef_raw": b / float(d.sd[j]),
                    "votes": int(h.votes[g]),
                }
            )
    if het.get("tested"):
        het["per_feature"] = [
            {"feature": f, "q": het["per_feature_q"][j], "p": het["per_feature_p"][j],
             "p_bh": het["per_feature_p_bh"][j]}
            for j, f in enumerate(d.names)
        ]  # fmt: skip
        for k in ("per_feature_q", "per_feature_p", "per_feature_p_bh"):
            het.pop(k)
    gsum = {
        "by": by,
        "groups": names,
        "votes": dict(zip(names, h.votes.tolist(), strict=True)),
        "small_groups_left_out": small,
        "shrinkage": "empirical Bayes: normal prior per feature, mean and variance estimated",
        "between_group_sd": dict(zip(d.names, h.tau.tolist(), strict=True)),
        "heterogeneity": het,
        "interval": f"{eo.level:.0%} posterior intervals (normal approximation)",
    }
    return rows, gsum


def _people(
    v: Votes,
    d: Design,
    eff: Any,
    who: str,
    opts: ExplainOptions,
    status: Status,
    notes: list[str],
) -> dict[str, Any]:
    from prefkit.explain.people import basis, hierarchical, mixture

    gid, names, small = group_ids(v, who, opts.effects.min_votes)
    if len(names) < 3:
        why = (
            f"how people differ: skipped (only {len(names)} {who} group(s) with >= "
            f"{opts.effects.min_votes} votes)"
        )
        notes.append(why)
        return {"skipped": why}
    sel = gid >= 0
    cols = list(d.names)
    xall, pooled = d.x, eff.full
    if opts.context > 0:
        from prefkit.explain.model import fit
        from prefkit.rank.data import RankInputError
        from prefkit.rank.mixture import context_columns, context_names, prompt_context

        try:
            context_names(cols, opts.context_features)
            z = prompt_context(v.prompt.to_pylist(), opts.context, opts.embed_cache)
            inter, inames = context_columns(d.x, cols, z, opts.context_features)
        except RankInputError as e:
            raise ExplainInputError(str(e)) from e
        xall = np.hstack([d.x, inter])
        cols += list(inames)
        pooled = fit(xall, v.y, eff.model)
    x, y, g = xall[sel], v.y[sel], gid[sel]
    tick = status(f"{who} basis and clusters", 2)
    h = hierarchical(x, y, g, names, eff.model, pooled)
    b = basis((h.beta - h.mu) / h.tau)
    tick(1)
    mix = mixture(
        x,
        y,
        g,
        len(names),
        eff.model,
        pooled,
        b.coords[:, : min(5, b.coords.shape[1])],
        seed=opts.effects.seed,
    )
    tick(1)
    notes.extend(f"how people differ: {n}" for n in mix.notes)
    n_axes = min(3, len(b.explained))
    axes = []
    for k in range(n_axes):
        load = b.axes[k] * h.tau  # back in effect units: beta - mu = score x (axis * tau)
        load = load / (np.linalg.norm(load) or 1.0)
        top = np.argsort(-np.abs(load))[:5]
        axes.append(
            {
                "component": k + 1,
                "explained": float(b.explained[k]),
                "top": [{"feature": cols[j], "loading": float(load[j])} for j in top.tolist()],
            }
        )
    members = [
        {
            "group": name,
            "votes": int(h.votes[i]),
            "coords": [float(c) for c in b.coords[i, :n_axes]],
            "cluster": int(mix.labels[i]),
            "p_cluster": float(mix.resp[i, mix.labels[i]]),
            "weights": dict(zip(cols, h.beta[i].tolist(), strict=True)),
        }
        for i, name in enumerate(names)
    ]
    clusters = []
    for c in range(mix.k):
        diff = mix.beta[c] - pooled.beta
        top = np.argsort(-np.abs(diff))[:4]
        clusters.append(
            {
                "cluster": c,
                "size": int((mix.labels == c).sum()),
                "coef": dict(zip(cols, mix.beta[c].tolist(), strict=True)),
                "differs_by": [
                    {"feature": cols[j], "vs_population": float(diff[j])} for j in top.tolist()
                ],
            }
        )
    return {
        "by": who,
        "groups": len(names),
        "small_groups_left_out": small,
        "columns": cols,
        "explained": [float(e) for e in b.explained[:10]],
        "axes": axes,
        "members": members,
        "n_clusters": mix.k,
        "aic": {str(k): a for k, a in mix.aic.items()},
        "criterion": "latent-class mixture of vote models over groups (EM); K in 1..6 by AIC "
        "+ 2 x classification entropy",
        "context": {"components": opts.context, "columns": cols[len(d.names) :]},
        "population": dict(zip(cols, h.mu.tolist(), strict=True)),
        "between_group_sd": dict(zip(cols, h.tau.tolist(), strict=True)),
        "clusters": clusters,
    }


@dataclass(frozen=True)
class _DirResult:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    codes: F64


def _directions(
    v: Votes, d: Design, units: I64, opts: ExplainOptions, status: Status
) -> _DirResult:
    from prefkit.explain import model as M
    from prefkit.explain.directions import describe, embed_pairs, learn
    from prefkit.explain.effects import interval
    from prefkit.explain.features import LENGTH_FEATURES

    tick = status("embedding responses (MiniLM, cached)", 1)
    t0 = time.perf_counter()
    ea, eb, estats = embed_pairs(v.prompt, v.a, v.b, opts.embed_cache)
    tick(1)
    t_embed = time.perf_counter() - t0
    dd = (ea - eb).astype(np.float64)
    tick = status(f"learning {opts.directions} directions ({opts.method})", 1)
    dic = learn(dd, opts.directions, opts.top_k, opts.method, seed=opts.effects.seed)
    tick(1)
    codes = dic.codes
    sd = codes.std(axis=0)
    active = np.flatnonzero(sd > 0)
    a = codes[:, active] / sd[active]
    lcols = d.cols(list(LENGTH_FEATURES))
    x = np.hstack([a, d.x[:, lcols]])
    eo = opts.effects
    rng = np.random.default_rng([eo.seed, 23])
    full = M.fit(x, v.y)
    w = M.cluster_weights(units, rng, eo.rounds)
    boot = M.bootstrap(x, v.y, full, w, progress=status("direction effects", eo.rounds))
    lo, hi, se = interval(full.beta, boot, eo.level)
    outcome = ["a" if r[0] else "b" if r[1] else "tie" for r in v.y.tolist()]
    examples, hi_words, lo_words = describe(
        codes, v.prompt.to_pylist(), v.a.to_pylist(), v.b.to_pylist(), outcome, opts.examples
    )
    names: list[str | None] = [None] * codes.shape[1]
    if opts.judge is not None:
        from prefkit.explain.llm import ask_fn, name_directions

        idx = active.tolist()
        got = name_directions(
            ask_fn(opts.judge, status, f"naming {len(idx)} directions"),
            [[w for w, _ in hi_words[k]] for k in idx],
            [[w for w, _ in lo_words[k]] for k in idx],
            [examples[k] for k in idx],
        )
        for k, name in zip(idx, got, strict=True):
            names[k] = name
    rows: list[dict[str, Any]] = []
    for j, k in enumerate(active.tolist()):
        rows.append(
            {
                "type": "direction",
                "scope": "all",
                "feature": f"direction_{k}",
                "label": names[k] or ", ".join(w for w, _ in hi_words[k][:3]) or f"direction {k}",
                "name": names[k],
                "kind": "learned",
                "unit": "per SD of the activation",
                "sd": float(sd[k]),
                "coef": float(full.beta[j]),
                "ci_low": float(lo[j]),
                "ci_high": float(hi[j]),
                "se": float(se[j]),
                "active_share": float((codes[:, k] != 0).mean()),
                "words_high": [w for w, _ in hi_words[k]],
                "words_low": [w for w, _ in lo_words[k]],
                "votes": int(round(float(v.y.sum()))),
            }
        )
    rows.sort(key=lambda r: -abs(r["coef"]))
    summary: dict[str, Any] = {
        "method": dic.method,
        "directions": opts.directions,
        "active": int(active.size),
        "top_k": dic.k,
        "explained_variance": dic.explained,
        "embedding": "MiniLM (all-MiniLM-L6-v2) of reward's input text: response, then prompt",
        "texts_truncated": int(estats.truncated),
        "embeddings_cached": int(estats.cache_hits),
        "named_by": opts.judge.model if opts.judge is not None else None,
        "length_controlled": bool(lcols),
        "seconds_embed": round(t_embed, 3),
        "seconds_dictionary": round(dic.seconds, 3),
        "rows": [
            {k: r[k] for k in ("feature", "label", "name", "coef", "ci_low", "ci_high",
                                "active_share", "words_high", "words_low")}
            | {"examples": examples[int(r["feature"].split("_")[1])]}
            for r in rows
        ],
    }  # fmt: skip
    return _DirResult(rows, summary, codes)


def write_outputs(out: Path, res: ExplainResult, source: str) -> list[Path]:
    """report.html, effects.parquet and summary.json in `out`."""
    import json

    import pyarrow.parquet as pq

    from prefkit._cli import json_default
    from prefkit.explain.report import render

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    eff = out / "effects.parquet"
    pq.write_table(effects_table(res.rows), eff)
    paths.append(eff)
    summ = out / "summary.json"
    res.summary["source"] = source
    summ.write_text(
        json.dumps(res.summary, indent=1, ensure_ascii=False, default=json_default) + "\n",
        encoding="utf-8",
    )
    paths.append(summ)
    rep = out / "report.html"
    rep.write_text(render(res.summary, res.rows, source), encoding="utf-8")
    paths.append(rep)
    return paths


EFFECT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("type", pa.string()),
    ("scope", pa.string()),
    ("feature", pa.string()),
    ("label", pa.string()),
    ("name", pa.string()),
    ("kind", pa.string()),
    ("unit", pa.string()),
    ("sd", pa.float64()),
    ("coef", pa.float64()),
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("se", pa.float64()),
    ("p_value", pa.float64()),
    ("coef_raw", pa.float64()),
    ("ci_low_raw", pa.float64()),
    ("ci_high_raw", pa.float64()),
    ("coef_no_length", pa.float64()),
    ("ci_low_no_length", pa.float64()),
    ("ci_high_no_length", pa.float64()),
    ("coef_sparse", pa.float64()),
    ("selection_freq", pa.float64()),
    ("selected", pa.bool_()),
    ("winner_mean", pa.float64()),
    ("loser_mean", pa.float64()),
    ("active_share", pa.float64()),
    ("words_high", pa.list_(pa.string())),
    ("words_low", pa.list_(pa.string())),
    ("votes", pa.int64()),
]


def effects_table(rows: list[dict[str, Any]]) -> pa.Table:
    """One row per (scope, feature or direction); absent values are null."""
    cols = {}
    for name, typ in EFFECT_COLUMNS:
        vals = []
        for r in rows:
            x = r.get(name)
            if isinstance(x, float) and not np.isfinite(x):
                x = None
            vals.append(x)
        cols[name] = pa.array(vals, typ)
    return pa.table(cols)
