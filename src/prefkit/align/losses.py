"""The preference-optimization losses as one registry of small pure functions.

Every loss is a function of per-sequence log-probabilities (policy and reference, summed over
the completion tokens; the losses whose papers average over tokens divide by the token counts
themselves) plus ``beta`` and its own keyword parameters. It returns a :class:`LossOutput`:
per-example losses (the trainer takes their mean) and the implicit rewards.

Three input shapes:

- :class:`PairLogps`: chosen/rejected pairs, optionally with ``tie`` flags, soft labels
  (``strength`` = P(chosen is better) in 0..1), per-pair ``weight`` and ``margin``;
- :class:`UnpairedLogps`: single completions with a desirable/undesirable label (KTO);
- :class:`ListLogps`: k responses per prompt with ranks (Plackett-Luce, LiPO-lambda).

Per-pair weights apply to every pairwise loss (the per-pair loss is multiplied by ``weight``);
``margin`` is subtracted inside the DPO-family logistic losses (``dpo``, ``dpo_soft``,
``cdpo``) and added to the hinge's. ``LOSSES`` maps a name to its function, ``SPECS`` to its
metadata (input kind, whether it needs a reference model, TRL's equivalent). See
docs/align.md for the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
Kind = Literal["pair", "unpaired", "list"]


class LossInputError(ValueError):
    """A loss got inputs it cannot use (missing reference log-probs, bad shapes, bad params)."""


@dataclass(frozen=True)
class PairLogps:
    """Per-pair summed completion log-probs; optional per-pair labels (shape ``(n,)`` each)."""

    policy_chosen: Tensor
    policy_rejected: Tensor
    ref_chosen: Tensor | None = None
    ref_rejected: Tensor | None = None
    chosen_tokens: Tensor | None = None
    rejected_tokens: Tensor | None = None
    tie: Tensor | None = None
    strength: Tensor | None = None
    weight: Tensor | None = None
    margin: Tensor | None = None


@dataclass(frozen=True)
class UnpairedLogps:
    """Single completions: summed log-probs, ``label`` True = desirable; ``kl`` is KTO's
    reference point (a detached scalar; None = 0)."""

    policy: Tensor
    ref: Tensor | None
    label: Tensor
    kl: Tensor | None = None


@dataclass(frozen=True)
class ListLogps:
    """k responses per prompt: ``(n, k)`` summed log-probs and ranks (1 = best; equal ranks
    are ties); ``mask`` False marks padding where a prompt has fewer than k responses."""

    policy: Tensor
    ref: Tensor | None
    ranks: Tensor
    mask: Tensor | None = None


@dataclass(frozen=True)
class LossOutput:
    """Per-example losses and implicit rewards: ``(n, 2)`` [chosen, rejected] for pairs,
    ``(n,)`` for unpaired, ``(n, k)`` for lists (all detached). ``parts`` holds the named
    terms of composite losses (e.g. ORPO's ``nll`` and ``odds_ratio``), per example."""

    losses: Tensor
    rewards: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)

    @property
    def chosen_rewards(self) -> Tensor:
        return self.rewards[:, 0]

    @property
    def rejected_rewards(self) -> Tensor:
        return self.rewards[:, 1]


LossFn = Callable[..., LossOutput]


@dataclass(frozen=True)
class LossSpec:
    """What a loss needs and what it matches elsewhere."""

    name: str
    fn: LossFn
    kind: Kind
    needs_ref: bool
    average: bool  # divides log-probs by token counts (needs chosen/rejected_tokens)
    trl: tuple[str, str] | None  # (trainer, loss_type) with the same formula, if any
    defaults: dict[str, float]
    paper: str


# --------------------------------------------------------------------------------------------
# helpers


def _ref(lp: PairLogps, name: str) -> tuple[Tensor, Tensor]:
    if lp.ref_chosen is None or lp.ref_rejected is None:
        raise LossInputError(f"loss {name!r} needs reference log-probs (a reference model)")
    return lp.ref_chosen, lp.ref_rejected


def _logratios(lp: PairLogps, name: str) -> tuple[Tensor, Tensor]:
    rc, rr = _ref(lp, name)
    return lp.policy_chosen - rc, lp.policy_rejected - rr


def _tokens(lp: PairLogps, name: str) -> tuple[Tensor, Tensor]:
    if lp.chosen_tokens is None or lp.rejected_tokens is None:
        raise LossInputError(f"loss {name!r} averages over tokens: it needs token counts")
    return lp.chosen_tokens.clamp(min=1), lp.rejected_tokens.clamp(min=1)


def _pair_out(
    losses: Tensor, chosen: Tensor, rejected: Tensor, lp: PairLogps, **parts: Tensor
) -> LossOutput:
    if lp.weight is not None:
        losses = losses * lp.weight
    rewards = torch.stack([chosen.detach(), rejected.detach()], dim=1)
    return LossOutput(losses, rewards, dict(parts))


def _margin(lp: PairLogps) -> Tensor | float:
    return lp.margin if lp.margin is not None else 0.0


def _check_unit(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise LossInputError(f"{name} must be in [{low}, {high}], got {value}")


# --------------------------------------------------------------------------------------------
# pairwise losses with a reference model


def dpo(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """DPO, sigmoid loss: ``-log σ(β·((πc − rc) − (πr − rr)) − margin)``, times ``weight``.

    Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
    Reward Model". The per-pair margin is the Llama-2 reward-model margin moved to DPO; with
    no weights and margins (or all weights 1, margins 0) this is plain DPO.
    """
    c, r = _logratios(lp, "dpo")
    losses = -F.logsigmoid(beta * (c - r) - _margin(lp))
    return _pair_out(losses, beta * c, beta * r, lp)


def cdpo(lp: PairLogps, beta: float = 0.1, label_smoothing: float = 0.0) -> LossOutput:
    """Conservative DPO: labels flipped with probability ε,
    ``−(1−ε)·log σ(β·d − m) − ε·log σ(−β·d + m)``.

    Mitchell 2023, "A note on DPO with noisy preferences & relationship to IPO"
    (TRL's ``label_smoothing``). ε = 0 is DPO.
    """
    _check_unit("label_smoothing", label_smoothing, 0.0, 0.5)
    c, r = _logratios(lp, "cdpo")
    z = beta * (c - r) - _margin(lp)
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return _pair_out(losses, beta * c, beta * r, lp)


def robust(lp: PairLogps, beta: float = 0.1, label_smoothing: float = 0.0) -> LossOutput:
    """Robust DPO (rDPO): an unbiased loss under label noise rate ε,
    ``(−(1−ε)·log σ(β·d) + ε·log σ(−β·d)) / (1 − 2ε)``.

    Chowdhury et al. 2024, "Provably Robust DPO: Aligning Language Models with Noisy
    Feedback". ε = 0 is DPO.
    """
    _check_unit("label_smoothing", label_smoothing, 0.0, 0.499)
    c, r = _logratios(lp, "robust")
    z = beta * (c - r)
    losses = (-(1 - label_smoothing) * F.logsigmoid(z) + label_smoothing * F.logsigmoid(-z)) / (
        1 - 2 * label_smoothing
    )
    return _pair_out(losses, beta * c, beta * r, lp)


def dpo_soft(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """DPO with soft labels: ``−p·log σ(β·d − m) − (1−p)·log σ(−β·d + m)``, p = ``strength``.

    Cross-entropy against a graded preference (p = 1: chosen surely better; p = 0.5: no
    preference); pairs without a strength use p = 1, ties without one p = 0.5. With every
    p = 1 this is DPO; a per-pair p = 1 − ε is cDPO's label smoothing (Mitchell 2023).
    """
    c, r = _logratios(lp, "dpo_soft")
    p = torch.ones_like(c) if lp.strength is None else lp.strength.to(c.dtype)
    if lp.strength is None and lp.tie is not None:
        p = torch.where(lp.tie, torch.full_like(c, 0.5), p)
    if bool(((p < 0) | (p > 1)).any()):
        raise LossInputError("strength must be in [0, 1]")
    z = beta * (c - r) - _margin(lp)
    losses = -p * F.logsigmoid(z) - (1 - p) * F.logsigmoid(-z)
    return _pair_out(losses, beta * c, beta * r, lp)


def _tie_flags(lp: PairLogps, like: Tensor) -> Tensor:
    return torch.zeros_like(like, dtype=torch.bool) if lp.tie is None else lp.tie.to(torch.bool)


def dpo_davidson(lp: PairLogps, beta: float = 0.1, nu: float = 1.0) -> LossOutput:
    """Tie-aware DPO with the Davidson model (DPO-D).

    With d = β·((πc − rc) − (πr − rr)): P(win) = 1 / (1 + e^(−d) + ν·e^(−d/2)),
    P(tie) = ν / (e^(d/2) + e^(−d/2) + ν). A clear pair costs −log P(win); a tie costs
    −log P(tie), smallest at d = 0: it pulls the two implicit rewards together. ν = 0 with no
    ties is DPO. Chen et al. 2024, "On Extending Direct Preference Optimization to Accommodate
    Ties".
    """
    if nu < 0:
        raise LossInputError(f"nu must be >= 0, got {nu}")
    c, r = _logratios(lp, "dpo_davidson")
    d = beta * (c - r)
    tie = _tie_flags(lp, d)
    log_nu = math.log(nu) if nu > 0 else -math.inf
    zero = torch.zeros_like(d)
    nuv = torch.full_like(d, log_nu)
    # log(1 + e^(-d) + ν e^(-d/2)) and log(e^(d/2) + e^(-d/2) + ν), stably
    log_den_win = torch.logsumexp(torch.stack([zero, -d, nuv - d / 2]), dim=0)
    log_den_tie = torch.logsumexp(torch.stack([d / 2, -d / 2, nuv]), dim=0)
    if nu == 0 and bool(tie.any()):
        raise LossInputError("dpo_davidson with nu = 0 gives ties probability 0; use nu > 0")
    tie_loss = log_den_tie - (log_nu if nu > 0 else 0.0)
    losses = torch.where(tie, tie_loss, log_den_win)
    return _pair_out(losses, beta * c, beta * r, lp)


def dpo_rao_kupper(lp: PairLogps, beta: float = 0.1, theta: float = 2.0) -> LossOutput:
    """Tie-aware DPO with the Rao-Kupper model (DPO-RK), θ ≥ 1.

    P(win) = σ(d − log θ), P(tie) = (θ² − 1) / ((1 + θ·e^(−d))·(1 + θ·e^(d))), d as in DPO;
    ties cost −log P(tie), smallest at d = 0. θ = 1 with no ties is DPO. Chen et al. 2024,
    "On Extending Direct Preference Optimization to Accommodate Ties".
    """
    if theta < 1:
        raise LossInputError(f"theta must be >= 1, got {theta}")
    c, r = _logratios(lp, "dpo_rao_kupper")
    d = beta * (c - r)
    tie = _tie_flags(lp, d)
    lt = math.log(theta)
    if theta == 1 and bool(tie.any()):
        raise LossInputError("dpo_rao_kupper with theta = 1 gives ties probability 0")
    win = -F.logsigmoid(d - lt)
    tie_loss = (
        F.softplus(lt - d) + F.softplus(lt + d) - (math.log(theta**2 - 1) if theta > 1 else 0.0)
    )
    losses = torch.where(tie, tie_loss, win)
    return _pair_out(losses, beta * c, beta * r, lp)


def ipo(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """IPO: ``(d̄ − 1/(2β))²`` with d̄ the difference of token-averaged log-ratios.

    Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
    Preferences" (Eq. 17; the token averaging follows TRL, confirmed with the authors).
    """
    c, r = _logratios(lp, "ipo")
    nc, nr = _tokens(lp, "ipo")
    losses = (c / nc - r / nr - 1 / (2 * beta)) ** 2
    return _pair_out(losses, beta * c, beta * r, lp)


def hinge(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """Hinge / SLiC-HF calibration loss: ``max(0, 1 + margin − β·d)``.

    Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback"
    (rank calibration loss; with the reference log-ratio as in TRL's ``hinge``; δ = 1/β).
    """
    c, r = _logratios(lp, "hinge")
    losses = torch.relu(1 + _margin(lp) - beta * (c - r))
    return _pair_out(losses, beta * c, beta * r, lp)


def exo_pair(lp: PairLogps, beta: float = 0.1, label_smoothing: float = 1e-3) -> LossOutput:
    """EXO (pairwise): reverse KL from the model's pair distribution to the labels [1−ε, ε].

    Ji et al. 2024, "Towards Efficient Exact Optimization of Language Model Alignment" (Eq. 16).
    """
    _check_unit("label_smoothing", label_smoothing, 1e-12, 0.5)
    c, r = _logratios(lp, "exo_pair")
    z = beta * (c - r)
    eps = torch.tensor(label_smoothing, dtype=z.dtype)
    losses = torch.sigmoid(z) * (F.logsigmoid(z) - torch.log1p(-eps)) + torch.sigmoid(-z) * (
        F.logsigmoid(-z) - torch.log(eps)
    )
    return _pair_out(losses, beta * c, beta * r, lp)


def nca_pair(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """NCA (pairwise): ``−log σ(β·c) − ½·log σ(−β·c) − ½·log σ(−β·r)`` on log-ratios c, r.

    Chen et al. 2024, "Noise Contrastive Alignment of Language Models with Explicit Rewards".
    """
    c, r = _logratios(lp, "nca_pair")
    zc, zr = beta * c, beta * r
    losses = -F.logsigmoid(zc) - 0.5 * F.logsigmoid(-zc) - 0.5 * F.logsigmoid(-zr)
    return _pair_out(losses, zc, zr, lp)


def bco(lp: PairLogps, beta: float = 0.1, delta: float = 0.0) -> LossOutput:
    """BCO (pairwise): a binary classifier on rewards, ``−log σ(β·c − δ) − log σ(−(β·r − δ))``.

    Jung et al. 2024, "Binary Classifier Optimization for Large Language Model Alignment".
    δ is the reward shift (the paper's running mean of rewards; 0 = TRL's ``bco_pair``).
    """
    c, r = _logratios(lp, "bco")
    zc, zr = beta * c, beta * r
    losses = -F.logsigmoid(zc - delta) - F.logsigmoid(-(zr - delta))
    return _pair_out(losses, zc, zr, lp)


def sppo_hard(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """SPPO with hard labels: ``(c − 1/(2β))² + (r + 1/(2β))²`` on log-ratios c, r.

    Wu et al. 2024, "Self-Play Preference Optimization for Language Model Alignment"
    (Eq. 4.7 with P = 1 for the winner, 0 for the loser).
    """
    c, r = _logratios(lp, "sppo_hard")
    losses = (c - 0.5 / beta) ** 2 + (r + 0.5 / beta) ** 2
    return _pair_out(losses, beta * c, beta * r, lp)


def apo_zero(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """APO-zero: ``(1 − σ(β·c)) + σ(β·r)``: raise chosen, lower rejected likelihood.

    D'Oosterlinck et al. 2024, "Anchored Preference Optimization and Contrastive Revisions"
    (Eq. 7). Use when the chosen outputs are better than the model's own.
    """
    c, r = _logratios(lp, "apo_zero")
    losses = (1 - torch.sigmoid(beta * c)) + torch.sigmoid(beta * r)
    return _pair_out(losses, beta * c, beta * r, lp)


def apo_down(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """APO-down: ``σ(β·c) + (1 − σ(β·(c − r)))``: lower both, the rejected more.

    D'Oosterlinck et al. 2024, "Anchored Preference Optimization and Contrastive Revisions"
    (Eq. 8). Use when the chosen outputs are worse than the model's own.
    """
    c, r = _logratios(lp, "apo_down")
    losses = torch.sigmoid(beta * c) + (1 - torch.sigmoid(beta * (c - r)))
    return _pair_out(losses, beta * c, beta * r, lp)


def discopop(lp: PairLogps, beta: float = 0.1, tau: float = 0.05) -> LossOutput:
    """DiscoPOP: a log-ratio-modulated blend of the logistic and exponential losses.

    Chan Lu et al. 2024, "Discovering Preference Optimization Algorithms with and for Large
    Language Models" (Eq. 5).
    """
    c, r = _logratios(lp, "discopop")
    z = beta * (c - r)
    mod = torch.sigmoid(z / tau)
    losses = -F.logsigmoid(z) * (1 - mod) + torch.exp(-z) * mod
    return _pair_out(losses, beta * c, beta * r, lp)


# --------------------------------------------------------------------------------------------
# reference-free pairwise losses


def _nll(lp: PairLogps, name: str) -> Tensor:
    nc, _ = _tokens(lp, name)
    return -lp.policy_chosen / nc


def _log1mexp(x: Tensor) -> Tensor:
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo(lp: PairLogps, beta: float = 0.1) -> LossOutput:
    """ORPO: ``NLL(chosen) − β·log σ(log odds(chosen) − log odds(rejected))`` on
    token-averaged log-probs (odds = p / (1 − p)); no reference model; β is the paper's λ.

    Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model".
    The NLL term here is per pair (mean over the chosen tokens); TRL averages it over all
    chosen tokens of the batch, so the two agree on the odds-ratio part exactly and on the
    total when the chosen lengths are equal.
    """
    nc, nr = _tokens(lp, "orpo")
    pc, pr = lp.policy_chosen / nc, lp.policy_rejected / nr
    log_odds = (pc - pr) - (_log1mexp(pc) - _log1mexp(pr))
    odds_ratio = -beta * F.logsigmoid(log_odds)
    nll = -pc
    return _pair_out(nll + odds_ratio, beta * pc, beta * pr, lp, nll=nll, odds_ratio=odds_ratio)


def simpo(
    lp: PairLogps, beta: float = 2.0, gamma: float = 0.5, label_smoothing: float = 0.0
) -> LossOutput:
    """SimPO: ``−log σ(β·(π̄c − π̄r) − γ)`` on token-averaged policy log-probs; no reference.

    Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward"
    (γ is the target reward margin; TRL's ``simpo_gamma``).
    """
    nc, nr = _tokens(lp, "simpo")
    pc, pr = lp.policy_chosen / nc, lp.policy_rejected / nr
    z = beta * (pc - pr) - gamma
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return _pair_out(losses, beta * pc, beta * pr, lp)


def cpo(lp: PairLogps, beta: float = 0.1, alpha: float = 1.0) -> LossOutput:
    """CPO: ``−log σ(β·(πc − πr)) + α·NLL(chosen)`` on summed policy log-probs; no reference.

    Xu et al. 2024, "Contrastive Preference Optimization: Pushing the Boundaries of LLM
    Performance in Machine Translation" (α = TRL's ``cpo_alpha``; NLL per pair, mean over the
    chosen tokens).
    """
    pref = -F.logsigmoid(beta * (lp.policy_chosen - lp.policy_rejected))
    nll = _nll(lp, "cpo") if alpha else torch.zeros_like(pref)
    return _pair_out(
        pref + alpha * nll,
        beta * lp.policy_chosen,
        beta * lp.policy_rejected,
        lp,
        preference=pref,
        nll=nll,
    )


# --------------------------------------------------------------------------------------------
# unpaired


def kto(
    lp: UnpairedLogps,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossOutput:
    """KTO: desirable ``λD·(1 − σ(β·(c − z0)))``, undesirable ``λU·(1 − σ(β·(z0 − r)))``.

    Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization" (Eq. 7).
    z0 = ``kl`` (a detached batch estimate of KL(π‖π_ref), clamped at 0; None = 0). The
    paper's rule for unbalanced data: λD·nD / (λU·nU) in [1, 4/3] (``prefkit pairs --to kto``
    reports the weights).
    """
    if lp.ref is None:
        raise LossInputError("loss 'kto' needs reference log-probs (a reference model)")
    ratio = lp.policy - lp.ref
    z0 = torch.zeros((), dtype=ratio.dtype) if lp.kl is None else lp.kl.detach().clamp(min=0)
    label = lp.label.to(torch.bool)
    losses = torch.where(
        label,
        desirable_weight * (1 - torch.sigmoid(beta * (ratio - z0))),
        undesirable_weight * (1 - torch.sigmoid(beta * (z0 - ratio))),
    )
    return LossOutput(losses, (beta * ratio).detach())


# --------------------------------------------------------------------------------------------
# listwise


def _list_rewards(lp: ListLogps, beta: float, name: str) -> tuple[Tensor, Tensor]:
    if lp.ref is None:
        raise LossInputError(f"loss {name!r} needs reference log-probs (a reference model)")
    if lp.policy.ndim != 2 or lp.policy.shape != lp.ranks.shape:
        raise LossInputError(f"loss {name!r} needs (n, k) log-probs and ranks of the same shape")
    mask = torch.ones_like(lp.policy, dtype=torch.bool) if lp.mask is None else lp.mask.bool()
    return beta * (lp.policy - lp.ref), mask


def plackett_luce(lp: ListLogps, beta: float = 0.1) -> LossOutput:
    """Listwise DPO under the Plackett-Luce model: ``−Σ_j [s_σ(j) − log Σ_{l≥j} e^{s_σ(l)}]``.

    s = β·(π − π_ref); σ orders the responses by rank (best first; equal ranks keep their
    input order). Rafailov et al. 2023 (DPO, Appendix A.3, Plackett-Luce); with k = 2 this is
    DPO.
    """
    s, mask = _list_rewards(lp, beta, "plackett_luce")
    ranks = lp.ranks.to(torch.int64)
    ranks = torch.where(mask, ranks, torch.full_like(ranks, int(ranks.max()) + 1))
    k = s.shape[1]
    order = torch.argsort(ranks * k + torch.arange(k), dim=1)
    ss = torch.gather(s, 1, order)
    mm = torch.gather(mask, 1, order)
    neg = torch.finfo(s.dtype).min
    masked = torch.where(mm, ss, torch.full_like(ss, neg))
    # log Σ_{l≥j} e^{s_l}: reverse cumulative logsumexp
    tail = torch.flip(torch.logcumsumexp(torch.flip(masked, [1]), dim=1), [1])
    terms = torch.where(mm, ss - tail, torch.zeros_like(ss))
    return LossOutput(-terms.sum(dim=1), s.detach())


def lipo_lambda(lp: ListLogps, beta: float = 0.1) -> LossOutput:
    """LiPO-λ: ``−Σ_{ψi > ψj} Δij·log σ(si − sj)`` with LambdaRank weights
    Δij = |Gi − Gj|·|1/D(τi) − 1/D(τj)|, G = 2^ψ − 1, D(τ) = log2(1 + τ).

    Liu et al. 2024, "LiPO: Listwise Preference Optimization through Learning-to-Rank".
    s = β·(π − π_ref); labels ψ = k − rank (best = k − 1, ties equal); τ is the position of a
    response when sorted by s (detached, as in LambdaRank). For k = 2 this is DPO times
    1 − 1/log2(3).
    """
    s, mask = _list_rewards(lp, beta, "lipo_lambda")
    k = s.shape[1]
    psi = (k - lp.ranks).to(s.dtype)
    gain = torch.pow(2.0, psi) - 1
    sd = s.detach().masked_fill(~mask, -math.inf)
    pos = torch.argsort(torch.argsort(-sd, dim=1), dim=1).to(s.dtype) + 1  # 1-based τ
    inv_d = 1.0 / torch.log2(1 + pos)
    delta = (gain[:, :, None] - gain[:, None, :]).abs() * (
        inv_d[:, :, None] - inv_d[:, None, :]
    ).abs()
    better = (psi[:, :, None] > psi[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    pair = -F.logsigmoid(s[:, :, None] - s[:, None, :])
    losses = (delta.detach() * pair * better).sum(dim=(1, 2))
    return LossOutput(losses, s.detach())


# --------------------------------------------------------------------------------------------
# the registry

_SPECS: list[LossSpec] = [
    LossSpec("dpo", dpo, "pair", True, False, ("dpo", "sigmoid"), {}, "Rafailov et al. 2023"),
    LossSpec("cdpo", cdpo, "pair", True, False, None, {"label_smoothing": 0.1}, "Mitchell 2023"),
    LossSpec(
        "robust",
        robust,
        "pair",
        True,
        False,
        ("dpo", "robust"),
        {"label_smoothing": 0.1},
        "Chowdhury et al. 2024",
    ),
    LossSpec("dpo_soft", dpo_soft, "pair", True, False, None, {}, "soft-label DPO"),
    LossSpec(
        "dpo_davidson", dpo_davidson, "pair", True, False, None, {"nu": 1.0}, "Chen et al. 2024"
    ),
    LossSpec(
        "dpo_rao_kupper",
        dpo_rao_kupper,
        "pair",
        True,
        False,
        None,
        {"theta": 2.0},
        "Chen et al. 2024",
    ),
    LossSpec("ipo", ipo, "pair", True, True, ("dpo", "ipo"), {}, "Azar et al. 2023"),
    LossSpec("hinge", hinge, "pair", True, False, ("dpo", "hinge"), {}, "Zhao et al. 2023"),
    LossSpec(
        "exo_pair",
        exo_pair,
        "pair",
        True,
        False,
        ("dpo", "exo_pair"),
        {"label_smoothing": 1e-3},
        "Ji et al. 2024",
    ),
    LossSpec("nca_pair", nca_pair, "pair", True, False, ("dpo", "nca_pair"), {}, "Chen 2024"),
    LossSpec(
        "bco", bco, "pair", True, False, ("dpo", "bco_pair"), {"delta": 0.0}, "Jung et al. 2024"
    ),
    LossSpec("sppo_hard", sppo_hard, "pair", True, False, ("dpo", "sppo_hard"), {}, "Wu 2024"),
    LossSpec("apo_zero", apo_zero, "pair", True, False, ("dpo", "apo_zero"), {}, "D'Oosterlinck"),
    LossSpec("apo_down", apo_down, "pair", True, False, ("dpo", "apo_down"), {}, "D'Oosterlinck"),
    LossSpec(
        "discopop",
        discopop,
        "pair",
        True,
        False,
        ("dpo", "discopop"),
        {"tau": 0.05},
        "Chan Lu et al. 2024",
    ),
    LossSpec("orpo", orpo, "pair", False, True, ("orpo", "odds_ratio"), {}, "Hong et al. 2024"),
    LossSpec(
        "simpo",
        simpo,
        "pair",
        False,
        True,
        ("cpo", "simpo"),
        {"gamma": 0.5},
        "Meng et al. 2024",
    ),
    LossSpec("cpo", cpo, "pair", False, True, ("cpo", "sigmoid"), {"alpha": 1.0}, "Xu 2024"),
    LossSpec(
        "kto",
        kto,
        "unpaired",
        True,
        False,
        ("kto", "kto"),
        {"desirable_weight": 1.0, "undesirable_weight": 1.0},
        "Ethayarajh et al. 2024",
    ),
    LossSpec("plackett_luce", plackett_luce, "list", True, False, None, {}, "Rafailov et al. 2023"),
    LossSpec("lipo_lambda", lipo_lambda, "list", True, False, None, {}, "Liu et al. 2024"),
]

SPECS: dict[str, LossSpec] = {s.name: s for s in _SPECS}
LOSSES: dict[str, LossFn] = {s.name: s.fn for s in _SPECS}


def get_loss(name: str) -> LossSpec:
    """The spec of a registered loss; a clear error naming the known ones otherwise."""
    if name not in SPECS:
        raise LossInputError(f"unknown loss {name!r}; known: {', '.join(SPECS)}")
    return SPECS[name]


def loss_params(name: str, given: dict[str, Any] | None = None) -> dict[str, float]:
    """The loss's parameters: its defaults updated by `given`, unknown names refused."""
    spec = get_loss(name)
    import inspect

    allowed = [p for p in inspect.signature(spec.fn).parameters if p not in ("lp",)]
    out = dict(spec.defaults)
    for k, v in (given or {}).items():
        if k not in allowed:
            raise LossInputError(
                f"loss {name!r} has no parameter {k!r}; it takes {', '.join(allowed)}"
            )
        out[k] = float(v)
    return out
