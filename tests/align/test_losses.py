"""Every registered loss: a finite-difference gradient check, a case with a known answer, and
the reductions its paper states (to plain DPO, or to a scaled DPO)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from prefkit.align.losses import (
    LOSSES,
    SPECS,
    ListLogps,
    LossInputError,
    PairLogps,
    UnpairedLogps,
    get_loss,
    loss_params,
)

D = torch.float64


def _pairs(n: int = 6, seed: int = 0, tie: bool = True, soft: bool = False) -> PairLogps:
    g = torch.Generator().manual_seed(seed)
    # log-probs of whole completions are negative; keep them in a realistic range
    pc, pr, rc, rr = (-(torch.rand(n, generator=g, dtype=D) * 20 + 1) for _ in range(4))
    nc = torch.randint(3, 15, (n,), generator=g).to(D)
    nr = torch.randint(3, 15, (n,), generator=g).to(D)
    ties = torch.arange(n) % 3 == 1 if tie else None
    strength = torch.rand(n, generator=g, dtype=D) if soft else None
    return PairLogps(pc, pr, rc, rr, nc, nr, tie=ties, strength=strength)


def _lists(n: int = 4, k: int = 4, seed: int = 0) -> ListLogps:
    g = torch.Generator().manual_seed(seed)
    pol = -(torch.rand(n, k, generator=g, dtype=D) * 20 + 1)
    ref = -(torch.rand(n, k, generator=g, dtype=D) * 20 + 1)
    ranks = torch.stack([torch.randperm(k, generator=g) + 1 for _ in range(n)])
    mask = torch.ones(n, k, dtype=torch.bool)
    mask[0, -1] = False  # one prompt has only k - 1 responses
    return ListLogps(pol, ref, ranks, mask)


def _unpaired(n: int = 8, seed: int = 0) -> UnpairedLogps:
    g = torch.Generator().manual_seed(seed)
    pol = -(torch.rand(n, generator=g, dtype=D) * 20 + 1)
    ref = -(torch.rand(n, generator=g, dtype=D) * 20 + 1)
    label = torch.arange(n) % 2 == 0
    return UnpairedLogps(pol, ref, label, kl=torch.tensor(0.3, dtype=D))


def _call(name: str, x: Any, **over: float) -> Any:
    spec = SPECS[name]
    params = {**spec.defaults, **over}
    if name in ("dpo_davidson", "dpo_rao_kupper") or spec.kind != "pair":
        return spec.fn(x, **params)
    return spec.fn(x, **params)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_differences(name: str) -> None:
    spec = SPECS[name]
    if spec.kind == "pair":
        base = _pairs(soft=name == "dpo_soft")

        def f(pc: Any, pr: Any, rc: Any, rr: Any) -> Any:
            lp = PairLogps(
                pc, pr, rc, rr, base.chosen_tokens, base.rejected_tokens, base.tie, base.strength
            )
            return _call(name, lp).losses

        inputs = (base.policy_chosen, base.policy_rejected, base.ref_chosen, base.ref_rejected)
    elif spec.kind == "unpaired":
        ub = _unpaired()

        def f(pol: Any, ref: Any) -> Any:  # type: ignore[misc]
            return _call(name, UnpairedLogps(pol, ref, ub.label, ub.kl)).losses

        inputs = (ub.policy, ub.ref)
    else:
        lb = _lists()

        def f(pol: Any, ref: Any) -> Any:  # type: ignore[misc]
            return _call(name, ListLogps(pol, ref, lb.ranks, lb.mask)).losses

        inputs = (lb.policy, lb.ref)
    leaves = tuple(t.clone().requires_grad_(True) for t in inputs)
    if name == "discopop":  # exp(-z) with the default tau: keep z moderate
        leaves = tuple((t / 10).detach().requires_grad_(True) for t in inputs)
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-5, rtol=1e-4)
    out = f(*leaves)
    assert torch.isfinite(out).all()
    grads = torch.autograd.grad(out.sum(), leaves[0], allow_unused=True)[0]
    assert grads is not None and grads.abs().sum() > 0  # the policy gets a signal


def _dpo_ref(d: Any, beta: float) -> Any:
    return -torch.nn.functional.logsigmoid(beta * d)


def test_known_answers_at_equal_policy_and_reference() -> None:
    """When the policy equals the reference every log-ratio is 0: closed-form values."""
    n = 3
    z = torch.full((n,), -10.0, dtype=D)
    cnt = torch.full((n,), 5.0, dtype=D)
    lp = PairLogps(z, z - 5, z, z - 5, cnt, cnt)
    b = 0.1
    want = {
        "dpo": math.log(2),
        "cdpo": math.log(2),
        "robust": math.log(2),  # ((1-e) - e) log 2 / (1 - 2e)
        "dpo_soft": math.log(2),
        "dpo_davidson": math.log(3),  # 1 + 1 + nu at nu = 1
        "dpo_rao_kupper": math.log(1 + 2.0),  # -log sigmoid(-log theta)
        "ipo": (1 / (2 * b)) ** 2,
        "hinge": 1.0,
        "exo_pair": 0.5 * (math.log(0.5) - math.log1p(-1e-3))
        + 0.5 * (math.log(0.5) - math.log(1e-3)),
        "nca_pair": 2 * math.log(2),
        "bco": 2 * math.log(2),
        "sppo_hard": 2 * (0.5 / b) ** 2,
        "apo_zero": 1.0,
        "apo_down": 1.0,
        "discopop": 0.5 * math.log(2) + 0.5,
    }
    for name, v in want.items():
        got = _call(name, lp).losses
        assert torch.allclose(got, torch.full_like(got, v), atol=1e-12), name


def test_known_answers_reference_free_and_ties() -> None:
    b = 0.1
    # policy chosen avg log-prob = rejected avg log-prob = log 0.5: odds ratio 1 -> OR = β log 2
    cnt = torch.tensor([4.0], dtype=D)
    half = torch.tensor([4 * math.log(0.5)], dtype=D)
    lp = PairLogps(half, half, None, None, cnt, cnt)
    o = LOSSES["orpo"](lp, beta=b)
    assert torch.allclose(o.parts["odds_ratio"], torch.tensor([b * math.log(2)], dtype=D))
    assert torch.allclose(o.parts["nll"], torch.tensor([math.log(2)], dtype=D))
    s = LOSSES["simpo"](lp, beta=2.0, gamma=0.5)
    assert torch.allclose(s.losses, -torch.nn.functional.logsigmoid(torch.tensor([-0.5], dtype=D)))
    c = LOSSES["cpo"](lp, beta=b, alpha=1.0)
    assert torch.allclose(c.losses, torch.tensor([math.log(2) + math.log(2)], dtype=D))
    # a tie with equal implicit rewards under Davidson: P(tie) = nu / (2 + nu)
    z = torch.tensor([-3.0], dtype=D)
    t = PairLogps(z, z, z, z, tie=torch.tensor([True]))
    dv = LOSSES["dpo_davidson"](t, beta=b, nu=2.0)
    assert torch.allclose(dv.losses, torch.tensor([-math.log(2 / 4)], dtype=D))
    rk = LOSSES["dpo_rao_kupper"](t, beta=b, theta=3.0)
    # (θ² − 1) / (1 + θ)² at d = 0
    assert torch.allclose(rk.losses, torch.tensor([-math.log(8 / 16)], dtype=D))
    # KTO: desirable at logratio = kl costs λD/2, undesirable at logratio = kl costs λU/2
    u = UnpairedLogps(
        torch.tensor([-1.0, -1.0], dtype=D),
        torch.tensor([-1.5, -1.5], dtype=D),
        torch.tensor([True, False]),
        kl=torch.tensor(0.5, dtype=D),
    )
    k = LOSSES["kto"](u, beta=b, desirable_weight=2.0, undesirable_weight=1.0)
    assert torch.allclose(k.losses, torch.tensor([1.0, 0.5], dtype=D))


def test_ties_pull_rewards_together() -> None:
    """For a tie, the tie-aware losses are smallest at equal implicit rewards; DPO keeps
    pushing the (arbitrary) chosen side up."""
    ds = torch.linspace(-30, 30, 241, dtype=D)
    zero = torch.zeros_like(ds)
    lp = PairLogps(ds, zero, zero, zero, tie=torch.ones_like(ds, dtype=torch.bool))
    for name, kw in (("dpo_davidson", {"nu": 1.0}), ("dpo_rao_kupper", {"theta": 2.0})):
        loss = LOSSES[name](lp, beta=0.1, **kw).losses
        assert int(loss.argmin()) == 120, name  # d = 0
        assert loss[0] > loss[120] and loss[-1] > loss[120]
    soft = LOSSES["dpo_soft"](lp, beta=0.1).losses  # ties without strength: p = 0.5
    assert int(soft.argmin()) == 120
    dpo = LOSSES["dpo"](lp, beta=0.1).losses
    assert bool((dpo[1:] < dpo[:-1]).all())


def test_reductions_to_dpo() -> None:
    lp = _pairs(tie=False)
    d = (lp.policy_chosen - lp.ref_chosen) - (lp.policy_rejected - lp.ref_rejected)
    want = _dpo_ref(d, 0.1)
    same = {
        "cdpo": {"label_smoothing": 0.0},
        "robust": {"label_smoothing": 0.0},
        "dpo_davidson": {"nu": 0.0},
        "dpo_rao_kupper": {"theta": 1.0},
    }
    for name, kw in same.items():
        assert torch.allclose(LOSSES[name](lp, beta=0.1, **kw).losses, want), name
    assert torch.allclose(LOSSES["dpo"](lp, beta=0.1).losses, want)
    n = len(d)
    ones = PairLogps(**{**lp.__dict__, "weight": torch.ones(n, dtype=D), "margin": torch.zeros(n, dtype=D), "strength": torch.ones(n, dtype=D)})  # fmt: skip
    for name in ("dpo", "dpo_soft", "cdpo"):
        assert torch.allclose(LOSSES[name](ones, beta=0.1).losses, want), name
    # weights multiply, margins shift, strengths interpolate the two directions
    w = PairLogps(**{**lp.__dict__, "weight": torch.full((n,), 2.0, dtype=D)})
    assert torch.allclose(LOSSES["dpo"](w, beta=0.1).losses, 2 * want)
    m = PairLogps(**{**lp.__dict__, "margin": torch.full((n,), 0.5, dtype=D)})
    assert torch.allclose(
        LOSSES["dpo"](m, beta=0.1).losses, -torch.nn.functional.logsigmoid(0.1 * d - 0.5)
    )
    p = PairLogps(**{**lp.__dict__, "strength": torch.full((n,), 0.8, dtype=D)})
    smooth = LOSSES["cdpo"](lp, beta=0.1, label_smoothing=0.2).losses
    assert torch.allclose(LOSSES["dpo_soft"](p, beta=0.1).losses, smooth)
    # listwise with k = 2: Plackett-Luce is DPO, LiPO-λ is DPO × (1 − 1/log2 3)
    lst = ListLogps(
        torch.stack([lp.policy_chosen, lp.policy_rejected], 1),
        torch.stack([lp.ref_chosen, lp.ref_rejected], 1),  # type: ignore[list-item]
        torch.tensor([[1, 2]] * n),
    )
    assert torch.allclose(LOSSES["plackett_luce"](lst, beta=0.1).losses, want)
    lam = 1 - 1 / math.log2(3)
    assert torch.allclose(LOSSES["lipo_lambda"](lst, beta=0.1).losses, lam * want)
    # swapping the rank order swaps the roles
    rev = ListLogps(lst.policy, lst.ref, torch.tensor([[2, 1]] * n))
    assert torch.allclose(LOSSES["plackett_luce"](rev, beta=0.1).losses, _dpo_ref(-d, 0.1))


def test_plackett_luce_matches_enumerated_probability() -> None:
    """For k = 3, −log P(order) computed by the product of choice probabilities."""
    lst = _lists(n=1, k=3)
    lst = ListLogps(lst.policy, lst.ref, torch.tensor([[2, 3, 1]]))
    s = 0.1 * (lst.policy - lst.ref)[0]
    o = [2, 0, 1]  # best first
    want = -(s[o[0]] - torch.logsumexp(s[o], 0) + s[o[1]] - torch.logsumexp(s[o[1:]], 0))
    assert torch.allclose(LOSSES["plackett_luce"](lst, beta=0.1).losses[0], want)


def test_errors_are_clear() -> None:
    lp = _pairs()
    no_ref = PairLogps(lp.policy_chosen, lp.policy_rejected)
    with pytest.raises(LossInputError, match="needs reference log-probs"):
        LOSSES["dpo"](no_ref)
    with pytest.raises(LossInputError, match="token counts"):
        LOSSES["ipo"](
            PairLogps(lp.policy_chosen, lp.policy_rejected, lp.ref_chosen, lp.ref_rejected)
        )
    with pytest.raises(LossInputError, match="unknown loss 'dpoo'"):
        get_loss("dpoo")
    with pytest.raises(LossInputError, match="has no parameter 'gama'"):
        loss_params("simpo", {"gama": 1.0})
    with pytest.raises(LossInputError, match="theta must be >= 1"):
        LOSSES["dpo_rao_kupper"](lp, theta=0.5)
    with pytest.raises(LossInputError, match="ties probability 0"):
        LOSSES["dpo_davidson"](lp, nu=0.0)
    # reference-free losses run without one
    assert torch.isfinite(LOSSES["simpo"](PairLogps(lp.policy_chosen, lp.policy_rejected, chosen_tokens=lp.chosen_tokens, rejected_tokens=lp.rejected_tokens)).losses).all()  # fmt: skip


def test_registry_metadata_is_consistent() -> None:
    for name, spec in SPECS.items():
        assert spec.fn.__doc__ and "20" in spec.fn.__doc__ or name == "dpo_soft", name
        assert loss_params(name) == spec.defaults
        assert spec.kind in ("pair", "unpaired", "list")
