"""Personalised reward models: a pooled Bradley–Terry head plus one offset per group.

`prefkit rm train --personalize group|annotator|KEY` fits the pooled head as usual (the feature
head, or the MiniLM head with its feature column) and then, for every group (the labels of
`prefkit.build.groups.group_labels`), an offset δ_g on the same inputs (standardized features;
for the MiniLM head also the embedding coordinates in units of their SD, see `head_design`),
the MAP estimate under a Gaussian prior centred on the pooled head:

    minimise  Σ_i w_i ℓ(y_i, Δx_i·(β + δ_g)) + τ/2 · |δ_g|²     (w normalised to mean 1)

so a group with few votes stays near the pooled head and one with many moves as far as its
votes say (a hierarchical model with the population head fixed at its pooled estimate). The
prior strength τ is the one of `TAUS` with the lowest held-out log-loss in 5-fold
prompt-grouped cross-validation (pooled head refitted on each fold's training rows), or
`DEFAULT_TAU` when the rows have fewer than two prompts. `prefkit rm adapt` fits a new user's
offset from their votes with the same prior. Groups with fewer than `MIN_ROWS` usable votes,
and rows without a label, are scored by the pooled head and listed in the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from prefkit.reward.data import Pairs
from prefkit.reward.head import fit_lbfgs, one_blas_thread
from prefkit.reward.models import EmbedModel, FeatureModel

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TAUS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
DEFAULT_TAU = 30.0
MIN_ROWS = 10
FOLDS = 5


def offset_loss(delta: F64, d: F64, base: F64, y: F64, w: F64, tau: float) -> tuple[float, F64]:
    """Σ w ℓ(Δx·(β+δ)) + τ/2 |δ|² (w scaled to mean 1) and its gradient in δ."""
    wn = w * (len(w) / (float(w.sum()) or 1.0))
    z = base + d @ delta
    loss = -(wn * (y * log_expit(z) + (1 - y) * log_expit(-z))).sum()
    g = d.T @ (wn * (expit(z) - y))
    return float(loss + 0.5 * tau * delta @ delta), g + tau * delta


def fit_offset(d: F64, y: F64, w: F64, beta: F64, tau: float) -> F64:
    """The MAP offset δ from the head `beta` for the rows `d` (feature differences)."""
    k = d.shape[1]
    if not len(y):
        return np.zeros(k)
    res = minimize(offset_loss, np.zeros(k), args=(d, d @ beta, y, w, tau), jac=True,
                   method="L-BFGS-B")  # fmt: skip
    return np.asarray(res.x, dtype=np.float64)


def _fold_of(prompt_ids: list[str], seed: int) -> I64:
    from prefkit.reward.train import prompt_folds

    return prompt_folds(prompt_ids, min(FOLDS, len(set(prompt_ids))), seed)


def choose_tau(
    d: F64, y: F64, w: F64, codes: I64, prompt_ids: list[str], lam: float, seed: int
) -> tuple[float, list[dict[str, float]], str]:
    """τ of `TAUS` with the lowest held-out log-loss (prompt-grouped folds; the pooled head
    refitted with L2 `lam` on each fold's training rows; rows of code -1 use the pooled
    head). Returns (τ, path, how it was chosen)."""
    if len(set(prompt_ids)) < 2:
        return DEFAULT_TAU, [], f"default {DEFAULT_TAU:g}: fewer than two prompts to validate on"
    fold = _fold_of(prompt_ids, seed)
    parts = sorted(set(fold.tolist()))
    groups = sorted(set(codes[codes >= 0].tolist()))
    total = {t: 0.0 for t in TAUS}
    wsum = 0.0
    for f in parts:
        tr, va = fold != f, fold == f
        beta, _ = fit_lbfgs(d[tr], y[tr], w[tr], lam)
        wsum += float(w[va].sum())
        for t in TAUS:
            z = d[va] @ beta
            for g in groups:
                gt, gv = tr & (codes == g), codes[va] == g
                if not gv.any():
                    continue
                delta = fit_offset(d[gt], y[gt], w[gt], beta, t)
                z[gv] = d[va][gv] @ (beta + delta)
            yv, wv = y[va], w[va]
            total[t] += float(-(wv * (yv * log_expit(z) + (1 - yv) * log_expit(-z))).sum())
    path = [{"tau": t, "val_log_loss": total[t] / (wsum or 1.0)} for t in TAUS]
    best = min(path, key=lambda r: r["val_log_loss"])["tau"]
    return best, path, f"{len(parts)}-fold prompt-grouped cross-validation"


@dataclass(frozen=True)
class PersonalFit:
    tau: float
    offsets: dict[str, F64]
    rows: dict[str, int]
    info: dict[str, Any]


def head_design(
    model: FeatureModel | EmbedModel, p: Pairs, scale: F64 | None = None
) -> tuple[F64, F64, F64]:
    """(d, beta, scale) of a linear head: the design of response differences of the rows `p`,
    the pooled coefficients, and the per-column scale of the space the offsets' prior lives
    in (offsets are fitted on d / scale, where the pooled head is beta · scale, and stored in
    the model's own space, divided by scale). Features: the standardized feature differences,
    β, ones. MiniLM head: the embedding differences and the feature RM's standardized
    differences, [w_emb, w_feat]; `scale` is each embedding coordinate's SD over `p` (ones for
    the features) unless given — so one prior strength τ means the same on both blocks."""
    if isinstance(model, FeatureModel):
        d = model.design(p.prompts, p.a) - model.design(p.prompts, p.b)
        return d, model.beta, np.ones(d.shape[1]) if scale is None else scale
    de = model.embed(p.prompts, p.a) - model.embed(p.prompts, p.b)
    if model.features is not None and model.w_feat is not None:
        fd = model.features
        df = fd.design(p.prompts, p.a) - fd.design(p.prompts, p.b)
        wf = model.w_feat
    else:
        df, wf = np.zeros((len(p), 0)), np.zeros(0)
    if scale is None:
        sd = de.std(axis=0) if len(p) > 1 else np.ones(de.shape[1])
        scale = np.concatenate([np.where(sd > 1e-12, sd, 1.0), np.ones(df.shape[1])])
    return np.hstack([de, df]), np.concatenate([model.w_emb, wf]), scale


def fit_personal(
    fm: FeatureModel | EmbedModel,
    p: Pairs,
    labels: list[str],
    lam: float,
    seed: int = 0,
    tau: float | None = None,
    no_label: str = "(none)",
) -> PersonalFit:
    """Per-group offsets from the pooled head of `fm` (features or MiniLM head) on the usable
    rows `p` (labels aligned with `p`), in the model's own coefficients. Groups with fewer
    than `MIN_ROWS` rows, and `no_label`, stay pooled."""
    raw, beta_raw, scale = head_design(fm, p)
    d, beta = raw / scale, beta_raw * scale
    sizes: dict[str, int] = {}
    for lab in labels:
        sizes[lab] = sizes.get(lab, 0) + 1
    names = sorted((g for g in sizes if g != no_label and sizes[g] >= MIN_ROWS),
                   key=lambda g: (-sizes[g], g))  # fmt: skip
    pooled = [
        {"group": g, "rows": sizes[g], "reason": "no label" if g == no_label else
         f"fewer than {MIN_ROWS} votes: scored by the pooled head"}
        for g in sorted(set(sizes) - set(names), key=lambda g: (-sizes[g], g))
    ]  # fmt: skip
    code_of = {g: i for i, g in enumerate(names)}
    codes = np.array([code_of.get(lab, -1) for lab in labels], dtype=np.int64)
    with one_blas_thread():
        if tau is None:
            tau, path, how = choose_tau(d, p.y, p.weight, codes, p.prompt_ids, lam, seed)
        else:
            path, how = [], "given"
        offsets = {
            g: fit_offset(d[codes == i], p.y[codes == i], p.weight[codes == i], beta, tau) / scale
            for i, g in enumerate(names)
        }
    info = {
        "tau": tau,
        "tau_chosen_by": how,
        "tau_path": path,
        "prior": "Gaussian on each group's offset from the pooled head: sum of weighted "
        "log-losses + tau/2 |offset|^2",
        "groups": [
            {"name": g, "rows": sizes[g], "offset": [float(v) for v in offsets[g]]} for g in names
        ],
        "pooled_only": pooled,
    }
    if isinstance(fm, EmbedModel):
        info["scale"] = [float(v) for v in scale]
        info["offset_space"] = (
            "[MiniLM head w_emb, feature head w_feat]; the prior acts on offset x scale "
            "(embedding coordinates in units of their SD over the training rows)"
        )
    return PersonalFit(tau, offsets, {g: sizes[g] for g in names}, info)


def with_offset(model: FeatureModel | EmbedModel, off: F64) -> FeatureModel | EmbedModel:
    """The model whose linear head is the pooled one plus `off` (in its own coefficients)."""
    if isinstance(model, FeatureModel):
        return FeatureModel(model.names, model.mean, model.std, model.beta + off, model.se)
    dim = len(model.w_emb)
    wf = model.w_feat + off[dim:] if model.w_feat is not None else None
    own = EmbedModel(model.w_emb + off[:dim], model.features, wf, cache_dir=model.cache_dir)
    return own


def group_model(
    fm: FeatureModel | EmbedModel, card: dict[str, Any], group: str
) -> FeatureModel | EmbedModel | None:
    """The head of `group` (pooled head + its offset) from a card's `personalize` section, or
    None when the card has no such group."""
    for g in (card.get("personalize") or {}).get("groups", []):
        if g["name"] == group:
            return with_offset(fm, np.asarray(g["offset"], dtype=np.float64))
    return None


def adapt_card(
    fm: FeatureModel | EmbedModel, card: dict[str, Any], p: Pairs, name: str, votes: str
) -> tuple[dict[str, Any], F64]:
    """A copy of `card` with the group `name` fitted from the usable rows `p` (a new user's
    votes): the offset from the pooled head under the card's prior strength (`DEFAULT_TAU`
    when the model was not personalised) and, for a MiniLM head, the card's embedding scale
    (else the SD over the votes). A group of that name is replaced."""
    pc = dict(card.get("personalize") or {})
    tau = float(pc.get("tau", DEFAULT_TAU))
    given = np.asarray(pc["scale"], dtype=np.float64) if pc.get("scale") else None
    raw, beta, scale = head_design(fm, p, given)
    with one_blas_thread():
        off = fit_offset(raw / scale, p.y, p.weight, beta * scale, tau) / scale
    groups = [g for g in pc.get("groups", []) if g["name"] != name]
    groups.append({"name": name, "rows": len(p), "offset": [float(v) for v in off],
                   "adapted_from": votes})  # fmt: skip
    if "tau" not in pc:
        pc |= {"by": None, "tau": tau, "tau_chosen_by": f"default {DEFAULT_TAU:g}: the model "
               "was not trained with --personalize", "pooled_only": []}  # fmt: skip
    pc["groups"] = groups
    return {**card, "personalize": pc}, off
