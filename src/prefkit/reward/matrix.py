"""`prefkit rm eval-matrix`: train on each set, evaluate on every other — accuracy off the
training set, beside the length baseline, with intervals.

Rows of the matrix are training sets, columns evaluation sets. A cell is the accuracy (a/b
rows, Δ = 0 counts one half) of a model trained on the row's set and scored on the column's:

- off the diagonal: trained on all of the row's set;
- on the diagonal: `folds`-fold prompt-grouped cross-validation inside the set (every pair
  scored by a model that never saw its prompt), so it is held-out in-distribution accuracy;
- the row `others` (leave one set out): trained on every training set except the column's,
  several sources at once (source-balanced, per-source nuisance terms).

Every cell carries the length baseline (longer wins) on the same rows, a Wilson interval, and
the difference to the length baseline with a paired bootstrap interval (the eval set's rows
resampled). The summary averages the off-diagonal cells (and the `others` row) per model with
a bootstrap interval in which every evaluation set's rows are resampled once per replicate and
shared by all the cells of its column, and lists the cells below chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.reward.data import Pairs, pairs_from_table
from prefkit.reward.evaluate import accuracy_ci, decisive_correct
from prefkit.reward.sources import Source
from prefkit.reward.train import (
    EMBED_FOLDS,
    fit_features,
    prompt_folds,
    train_embed,
    usable,
)

F64 = NDArray[np.float64]

# model name → (backend, disentangled)
MODELS: dict[str, tuple[str, bool]] = {
    "features": ("features", False),
    "disentangled": ("features", True),
    "embed": ("embed", False),
    "embed-disentangled": ("embed", True),
}
PAIRED = (("features", "disentangled"), ("embed", "embed-disentangled"))
OTHERS = "others"


@dataclass(eq=False)
class MatrixSet:
    """One set of the matrix: its rows (a/b/tie, source = file) with precomputed features,
    lengths and (for MiniLM models) embeddings of both responses."""

    name: str
    files: list[str]
    pairs: Pairs
    xa: F64
    xb: F64
    ea: F64 | None = None
    eb: F64 | None = None

    def __len__(self) -> int:
        return len(self.pairs)


def prepare_set(
    name: str, sources: Sequence[Source], embed: bool = False, cache_dir: str | None = None
) -> MatrixSet:
    """Pairs of every source (labelled by source), both_bad rows left out, features computed
    once; MiniLM embeddings too when `embed` (cached in `cache_dir`)."""
    from prefkit.reward.features import response_features

    parts = []
    for s in sources:
        assert s.table is not None, "load the source first"
        parts.append(pairs_from_table(s.table).with_source(s.name))
    p = Pairs.concat(parts)
    p = p.take(usable(p))
    xa, _ = response_features(p.prompts, p.a)
    xb, _ = response_features(p.prompts, p.b)
    out = MatrixSet(name, [str(f) for s in sources for f in s.files], p, xa, xb)
    if embed:
        from prefkit.reward.models import EmbedModel

        em = EmbedModel(np.zeros(0), None, None, cache_dir=cache_dir)
        out.ea, out.eb = em.embed(p.prompts, p.a), em.embed(p.prompts, p.b)
    return out


Scorer = Callable[[MatrixSet, NDArray[np.int64]], F64]


def _subset(sets: Sequence[tuple[MatrixSet, NDArray[np.int64]]]) -> tuple[Pairs, F64, F64, Any]:
    p = Pairs.concat([s.pairs.take(i) for s, i in sets])
    xa = np.vstack([s.xa[i] for s, i in sets])
    xb = np.vstack([s.xb[i] for s, i in sets])
    emb = None
    if all(s.ea is not None and s.eb is not None for s, _ in sets):
        emb = (
            np.vstack([s.ea[i] for s, i in sets if s.ea is not None]),
            np.vstack([s.eb[i] for s, i in sets if s.eb is not None]),
        )
    return p, xa, xb, emb


def fit_scorer(
    model: str,
    sets: Sequence[tuple[MatrixSet, NDArray[np.int64]]],
    groups: Sequence[str],
    seed: int,
    epochs: int,
) -> Scorer:
    """Train `model` on the given rows of the given sets; return Δ = r(a) − r(b) on any set."""
    backend, dis = MODELS[model]
    g = tuple(groups) if dis else ()
    p, xa, xb, emb = _subset(sets)
    if backend == "features":
        fm = fit_features(p, seed=seed, groups=g, features=(xa, xb)).model

        def score_f(s: MatrixSet, idx: NDArray[np.int64]) -> F64:
            return np.asarray(((s.xa[idx] - s.xb[idx]) / fm.std) @ fm.beta, dtype=np.float64)

        return score_f
    if emb is None:
        raise ValueError(f"model {model} needs embeddings (prepare the sets with embed=True)")
    em, _ = train_embed(p, None, seed, epochs, groups=g, features=(xa, xb), embeddings=emb)
    fmod, w_feat = em.features, em.w_feat
    assert fmod is not None and w_feat is not None

    def score_e(s: MatrixSet, idx: NDArray[np.int64]) -> F64:
        assert s.ea is not None and s.eb is not None
        d = (s.ea[idx] - s.eb[idx]) @ em.w_emb + ((s.xa[idx] - s.xb[idx]) / fmod.std) @ w_feat
        return np.asarray(d, dtype=np.float64)

    return score_e


@dataclass
class _Column:
    """An evaluation set's decisive rows and its bootstrap count matrix (B × n)."""

    mask: NDArray[np.bool_]
    counts: NDArray[np.float32]
    length: F64  # per-row correctness of the length baseline


def _column(s: MatrixSet, n_boot: int, rng: np.random.Generator) -> _Column:
    la = np.log1p([len(t) for t in s.pairs.a])
    lb = np.log1p([len(t) for t in s.pairs.b])
    c, mask = decisive_correct(la - lb, s.pairs.outcome)
    n = int(mask.sum())
    idx = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), np.int64)
    counts = np.stack([np.bincount(r, minlength=n) for r in idx]).astype(np.float32)
    return _Column(mask, counts, c[mask])


def _ci(boots: F64) -> tuple[float, float]:
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(lo), float(hi)


def run_matrix(
    train_sets: Sequence[MatrixSet],
    eval_sets: Sequence[MatrixSet],
    models: Sequence[str] = ("features", "disentangled"),
    groups: Sequence[str] = ("length", "style"),
    folds: int = EMBED_FOLDS,
    seed: int = 0,
    epochs: int = 100,
    n_boot: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The matrix as one JSON-able dict (see the module docstring; keys in docs/reward.md)."""
    rng = np.random.default_rng(seed)
    cols = {e.name: _column(e, n_boot, rng) for e in eval_sets}
    by_name = {e.name: e for e in eval_sets}
    # (row, column, model) -> per-row correctness on the column's decisive rows
    correct: dict[tuple[str, str, str], F64] = {}
    say = progress or (lambda _m: None)

    def score_into(row: str, e: MatrixSet, model: str, delta: F64) -> None:
        c, _ = decisive_correct(delta, e.pairs.outcome)
        correct[(row, e.name, model)] = c[cols[e.name].mask]

    for t in train_sets:
        everything = np.arange(len(t), dtype=np.int64)
        for model in models:
            say(f"{model}: train on {t.name}")
            scorer = fit_scorer(model, [(t, everything)], groups, seed, epochs)
            for e in eval_sets:
                if e.name != t.name:
                    score_into(t.name, e, model, scorer(e, np.arange(len(e), dtype=np.int64)))
            if t.name in by_name and folds >= 2:
                fold = prompt_folds(t.pairs.prompt_ids, folds, seed)
                delta = np.zeros(len(t))
                for f in sorted(set(fold.tolist())):
                    say(f"{model}: {t.name}, fold {f + 1} of {folds}")
                    tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                    if not len(tr):
                        continue
                    delta[te] = fit_scorer(model, [(t, tr)], groups, seed, epochs)(t, te)
                score_into(t.name, t, model, delta)
    if len(train_sets) >= 2:
        fitted: dict[tuple[frozenset[str], str], Scorer] = {}
        for e in eval_sets:
            others = [t for t in train_sets if t.name != e.name]
            key = frozenset(t.name for t in others)
            for model in models:
                if (key, model) not in fitted:
                    say(f"{model}: train on every set but {e.name}")
                    fitted[(key, model)] = fit_scorer(
                        model,
                        [(t, np.arange(len(t), dtype=np.int64)) for t in others],
                        groups,
                        seed,
                        epochs,
                    )
                score_into(OTHERS, e, model, fitted[(key, model)](e, np.arange(len(e))))
    return _summarize(train_sets, eval_sets, models, groups, folds, correct, cols, n_boot, seed)


def _kind(row: str, col: str) -> str:
    if row == OTHERS:
        return "leave_one_out"
    return "diagonal" if row == col else "off_diagonal"


def _cell_stats(c: F64, length: F64, counts: NDArray[np.float32]) -> dict[str, Any]:
    n = c.size
    diff = c - length
    boots = counts @ diff / n if n else np.zeros(1)
    lo, hi = _ci(boots)
    return {
        **accuracy_ci(c),
        "minus_length": {"mean": float(diff.mean()) if n else None, "ci_low": lo, "ci_high": hi},
    }


def _mean_over(
    cells: list[tuple[str, str]],
    a: str,
    b: str | None,
    correct: dict[tuple[str, str, str], F64],
    cols: dict[str, _Column],
) -> dict[str, Any]:
    """Mean over `cells` of acc(a) − acc(b) (b None: the length baseline) with a bootstrap
    interval: one resample of every column per replicate, shared by that column's cells."""
    if not cells:
        return {"cells": 0, "mean": None, "ci_low": None, "ci_high": None}
    per_cell, boots = [], []
    for row, col in cells:
        ca = correct[(row, col, a)]
        cb = cols[col].length if b is None else correct[(row, col, b)]
        d = ca - cb
        per_cell.append(float(d.mean()) if d.size else 0.0)
        boots.append(cols[col].counts @ d / max(d.size, 1))
    lo, hi = _ci(np.mean(boots, axis=0))
    return {"cells": len(cells), "mean": float(np.mean(per_cell)), "ci_low": lo, "ci_high": hi}


def _summarize(
    train_sets: Sequence[MatrixSet],
    eval_sets: Sequence[MatrixSet],
    models: Sequence[str],
    groups: Sequence[str],
    folds: int,
    correct: dict[tuple[str, str, str], F64],
    cols: dict[str, _Column],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    rows = [t.name for t in train_sets] + ([OTHERS] if len(train_sets) >= 2 else [])
    cells_out: list[dict[str, Any]] = []
    kinds: dict[str, list[tuple[str, str]]] = {
        "off_diagonal": [],
        "diagonal": [],
        "leave_one_out": [],
    }
    for row in rows:
        for e in eval_sets:
            if (row, e.name, models[0]) not in correct:
                continue
            col = cols[e.name]
            kinds[_kind(row, e.name)].append((row, e.name))
            cells_out.append(
                {
                    "train": row,
                    "eval": e.name,
                    "kind": _kind(row, e.name),
                    "n": int(col.mask.sum()),
                    "length": accuracy_ci(col.length),
                    "models": {
                        m: _cell_stats(correct[(row, e.name, m)], col.length, col.counts)
                        for m in models
                    },
                }
            )
    summary: dict[str, Any] = {}
    for m in models:
        summary[m] = {}
        for kind, cells in kinds.items():
            accs = [float(correct[(r, c, m)].mean()) for r, c in cells]
            lens = [float(cols[c].length.mean()) for _, c in cells]
            below: list[dict[str, Any]] = [
                {"train": r, "eval": c, "accuracy": a}
                for (r, c), a in zip(cells, accs, strict=True)
                if a < 0.5
            ]
            cis = {
                (x["train"], x["eval"]): x["models"][m]["ci_high"]
                for x in cells_out
                if x["kind"] == kind
            }
            summary[m][kind] = {
                "cells": len(cells),
                "mean_accuracy": float(np.mean(accs)) if accs else None,
                "mean_length_baseline": float(np.mean(lens)) if lens else None,
                "minus_length": _mean_over(cells, m, None, correct, cols),
                "below_chance": below,
                "significantly_below_chance": [
                    b for b in below if (cis[(b["train"], b["eval"])] or 1.0) < 0.5
                ],
            }
    comparisons = []
    for plain, dis in PAIRED:
        if plain not in models or dis not in models:
            continue
        for kind in ("off_diagonal", "leave_one_out"):
            cells = kinds[kind]
            plain_below = [(r, c) for r, c in cells if float(correct[(r, c, plain)].mean()) < 0.5]
            comparisons.append(
                {
                    "plain": plain,
                    "disentangled": dis,
                    "kind": kind,
                    "minus_plain": _mean_over(cells, dis, plain, correct, cols),
                    "plain_below_chance": len(plain_below),
                    "disentangled_also_below_chance": [
                        {
                            "train": r,
                            "eval": c,
                            "plain": float(correct[(r, c, plain)].mean()),
                            "disentangled": float(correct[(r, c, dis)].mean()),
                        }
                        for r, c in plain_below
                        if float(correct[(r, c, dis)].mean()) < 0.5
                    ],
                }
            )
    return {
        "train": [t.name for t in train_sets],
        "eval": [e.name for e in eval_sets],
        "rows": rows,
        "models": list(models),
        "disentangle": list(groups),
        "folds": folds,
        "bootstrap": n_boot,
        "seed": seed,
        "sets": {
            s.name: {
                "files": s.files,
                "rows": len(s),
                "decisive": int(cols[s.name].mask.sum()) if s.name in cols else None,
                "skipped": dict(s.pairs.skipped),
            }
            for s in {x.name: x for x in [*train_sets, *eval_sets]}.values()
        },
        "cells": cells_out,
        "summary": summary,
        "comparisons": comparisons,
    }
