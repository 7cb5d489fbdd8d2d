"""Feature effects: what the votes reward, controlled for length, with intervals.

For every vote the design row is the difference of the two responses' features (a minus b),
each feature divided by its standard deviation over all responses (both sides, ddof 0), so a
coefficient is the change in log-odds of preferring a response per standard deviation more of
the feature, the other features held fixed. Constant features are dropped (and listed).

- `coef`: the full model (every feature, length included), penalised MLE with a tiny ridge;
  intervals: estimate ± z x the standard error of a cluster bootstrap over prompts (percentile
  intervals from the default 100 rounds covered 90% instead of 95% on the simulator; the
  bootstrap standard error is stable at 100 rounds; benchmarks/RESULTS.md);
- `coef_no_length`: the same model without the length feature, same bootstrap draws;
- `coef_sparse`: the L1 (lasso) model at the strength chosen by prompt-grouped
  cross-validation (one-standard-error rule);
- `selection_freq`: stability selection at that strength (complementary half-samples of
  prompts, randomized lasso with weakness 0.2); `selected` when >= `threshold` (0.6) and the
  effect's interval excludes 0 (a stable pick whose size is not known is not a finding). Chosen
  on the simulator: planted effects selected in 97% of runs, unplanted ones in < 1%
  (benchmarks/RESULTS.md; Meinshausen & Bühlmann recommend weakness 0.2-0.8, threshold
  0.6-0.9).

Raw-unit versions (`coef_raw`, ...) divide by the standard deviation: log-odds per unit of the
feature as defined in `prefkit.explain.features`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from prefkit.explain import model as M
from prefkit.explain.data import Votes
from prefkit.explain.features import BY_NAME, FEATURE_NAMES, LENGTH_FEATURES, text_features

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Tick = Callable[[int], None]


@dataclass(frozen=True)
class EffectOptions:
    rounds: int = 100  # bootstrap rounds
    level: float = 0.95
    folds: int = 5
    stability_pairs: int = 50  # 2 x pairs half-sample fits
    threshold: float = 0.6  # stability-selection frequency to call a feature selected
    weakness: float = 0.2  # randomized lasso: penalty scaled by U(weakness, 1) per fit
    min_votes: int = 20  # per group, for per-group effects and the annotator basis
    seed: int = 0


@dataclass(frozen=True)
class Design:
    x: F64  # (n, p) standardized differences
    names: list[str]
    sd: F64  # (p,)
    mean_a: F64  # (p,) mean raw value of the preferred response (decisive votes)
    mean_b: F64  # (p,) ... of the other one
    dropped: list[str] = field(default_factory=list)

    def cols(self, names: list[str]) -> list[int]:
        return [self.names.index(n) for n in names if n in self.names]


def design(v: Votes) -> Design:
    names = list(FEATURE_NAMES)
    xa = v.xa if v.xa is not None else text_features(v.prompt, v.a)[0]
    xb = v.xb if v.xb is not None else text_features(v.prompt, v.b)[0]
    sd = np.vstack([xa, xb]).std(axis=0)
    keep = sd > 1e-12
    kept = [n for n, k in zip(names, keep.tolist(), strict=True) if k]
    x = (xa - xb)[:, keep] / sd[keep]
    win_a = v.y[:, 0] > 0
    win_b = v.y[:, 1] > 0
    win = np.where(win_a[:, None], xa, xb)[win_a | win_b][:, keep]
    lose = np.where(win_a[:, None], xb, xa)[win_a | win_b][:, keep]
    return Design(
        x=np.asarray(x, dtype=np.float64),
        names=kept,
        sd=sd[keep],
        mean_a=win.mean(axis=0) if win.size else np.zeros(len(kept)),
        mean_b=lose.mean(axis=0) if lose.size else np.zeros(len(kept)),
        dropped=[n for n, k in zip(names, keep.tolist(), strict=True) if not k],
    )


def interval(est: F64, draws: F64, level: float) -> tuple[F64, F64, F64]:
    """(low, high, se): estimate ± z x the bootstrap standard error."""
    se = draws.std(axis=0, ddof=1)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return est - z * se, est + z * se, se


@dataclass(frozen=True)
class Effects:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    full: M.GLM
    model: str


MIN_CLUSTERS = 20  # fewer prompts than this: folds and the bootstrap resample single votes


def clusters(v: Votes) -> tuple[I64, str | None]:
    """Resampling units: prompts, or single votes when there are fewer than MIN_CLUSTERS
    prompts (a cluster bootstrap over a handful of prompts has no spread to speak of)."""
    n_prompts = int(np.unique(v.group).size)
    if n_prompts >= MIN_CLUSTERS:
        return v.group, None
    return np.arange(v.n, dtype=np.int64), (
        f"only {n_prompts} distinct prompt(s): cross-validation folds and the bootstrap "
        "resample single votes instead of prompts (intervals ignore within-prompt correlation)"
    )


def feature_effects(
    v: Votes,
    d: Design,
    opts: EffectOptions,
    tick: Tick | None = None,
) -> Effects:
    """Pooled effects of every feature (see module doc). `tick` advances a progress bar by
    the number of fits done (2 x rounds bootstrap fits + 2 x stability_pairs + CV)."""
    rng = np.random.default_rng([opts.seed, 22])
    x, y = d.x, v.y
    units, unit_note = clusters(v)
    mdl = M.model_for(y)
    full = M.fit(x, y, mdl)
    length_cols = d.cols(list(LENGTH_FEATURES))
    other = [j for j in range(len(d.names)) if j not in length_cols]
    no_len = M.fit(x[:, other], y, mdl) if length_cols else full
    cv = M.cv_path(x, y, units, mdl, rng, k=opts.folds)
    if tick:
        tick(opts.folds)
    lam = cv.lam_1se
    sparse, _ = M.lasso_fit(x, y, mdl, lam)
    freq = M.stability(
        x, y, units, mdl, lam, rng, pairs=opts.stability_pairs, weakness=opts.weakness,
        progress=tick,
    )  # fmt: skip
    w = M.cluster_weights(units, rng, opts.rounds)
    boot = M.bootstrap(x, y, full, w, progress=tick)
    boot_nl = M.bootstrap(x[:, other], y, no_len, w, progress=tick) if length_cols else boot
    lo, hi, se = interval(full.beta, boot, opts.level)
    lo_nl, hi_nl, se_nl = interval(no_len.beta, boot_nl, opts.level)
    rows: list[dict[str, Any]] = []
    for j, name in enumerate(d.names):
        f = BY_NAME[name]
        s = float(d.sd[j])
        k = other.index(j) if j in other else None
        z = float(full.beta[j] / se[j]) if se[j] > 0 else float("nan")
        row: dict[str, Any] = {
            "scope": "all",
            "feature": name,
            "label": f.label,
            "kind": f.group,
            "unit": f.unit,
            "sd": s,
            "winner_mean": float(d.mean_a[j]),
            "loser_mean": float(d.mean_b[j]),
            "coef": float(full.beta[j]),
            "ci_low": float(lo[j]),
            "ci_high": float(hi[j]),
            "se": float(se[j]),
            "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else float("nan"),
            "coef_raw": float(full.beta[j] / s),
            "ci_low_raw": float(lo[j] / s),
            "ci_high_raw": float(hi[j] / s),
            "coef_no_length": float(no_len.beta[k]) if k is not None else float("nan"),
            "ci_low_no_length": float(lo_nl[k]) if k is not None else float("nan"),
            "ci_high_no_length": float(hi_nl[k]) if k is not None else float("nan"),
            "se_no_length": float(se_nl[k]) if k is not None else float("nan"),
            "coef_sparse": float(sparse[j]),
            "selection_freq": float(freq[j]),
            "selected": bool(freq[j] >= opts.threshold and (lo[j] > 0 or hi[j] < 0)),
            "votes": int(round(float(y.sum()))),
        }
        rows.append(row)
    rows.sort(key=lambda r: -abs(r["coef"]))
    summary = {
        "model": mdl,
        "tie_nu": full.nu,
        "votes": int(round(float(y.sum()))),
        "ties": int(round(float(y[:, 2].sum()))),
        "prompts": int(np.unique(v.group).size),
        "resampling": "prompts" if unit_note is None else "votes",
        "resampling_note": unit_note,
        "features": list(d.names),
        "constant_features": list(d.dropped),
        "length_features": [n for n in LENGTH_FEATURES if n in d.names],
        "selected": [r["feature"] for r in rows if r["selected"]],
        "level": opts.level,
        "bootstrap_rounds": opts.rounds,
        "bootstrap": "cluster bootstrap over prompts; interval = estimate ± z x bootstrap SE",
        "lasso": {
            "lambda_min": cv.lam_min,
            "lambda_1se": cv.lam_1se,
            "lambda_used": lam,
            "rule": "one standard error",
            "folds": cv.folds,
            "lambdas": cv.lambdas.tolist(),
            "cv_loss": cv.loss.tolist(),
            "cv_se": cv.se.tolist(),
        },
        "stability": {
            "fits": 2 * opts.stability_pairs,
            "threshold": opts.threshold,
            "weakness": opts.weakness,
            "scheme": "complementary pairs of half-samples of prompts",
        },
        "loglik": -full.nll,
        "loglik_no_length": -no_len.nll,
        "length_dropped_changes": _length_changes(rows),
    }
    return Effects(rows, summary, full, mdl)


def _length_changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Features whose interval excludes 0 in one of the two models but not in the other, or
    whose sign flips: what controlling for length changes."""
    out = []
    for r in rows:
        if not np.isfinite(r["coef_no_length"]):
            continue
        sig_l = r["ci_low"] > 0 or r["ci_high"] < 0
        sig_n = r["ci_low_no_length"] > 0 or r["ci_high_no_length"] < 0
        flip = np.sign(r["coef"]) != np.sign(r["coef_no_length"]) and (sig_l or sig_n)
        if sig_l != sig_n or flip:
            out.append(
                {
                    "feature": r["feature"],
                    "coef": r["coef"],
                    "coef_no_length": r["coef_no_length"],
                    "significant_with_length": sig_l,
                    "significant_without_length": sig_n,
                }
            )
    return out


def group_ids(v: Votes, by: str, min_votes: int) -> tuple[I64, list[str], dict[str, int]]:
    """Row -> group index for `--by` (null values are their own group "(none)"), the group
    names (groups with fewer than `min_votes` votes get -1 and are counted)."""
    vals = ["(none)" if s is None else s for s in v.by[by]]
    names = sorted(set(vals))
    idx = {n: i for i, n in enumerate(names)}
    gid = np.array([idx[s] for s in vals], dtype=np.int64)
    votes = np.bincount(gid, weights=v.y.sum(axis=1), minlength=len(names))
    small = {names[i]: int(votes[i]) for i in range(len(names)) if votes[i] < min_votes}
    keep = [i for i in range(len(names)) if votes[i] >= min_votes]
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    return remap[gid], [names[i] for i in keep], small
