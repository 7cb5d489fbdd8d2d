"""Prefix-shared and packed batches give the unshared log-probs (and gradients) to 1e-5."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from prefkit.align.batching import (
    Group,
    response_logps,
    shared_batch,
    standard_batch,
)
from prefkit.align.evaluate import tokenize_pair
from tests.align import _tiny

pytestmark = [pytest.mark.train]


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    rows = _tiny.hh_rows(30)
    tok = _tiny.tokenizer(_tiny.texts_of(rows))
    groups = []
    for r in rows[:8]:
        p, resp, _, _ = tokenize_pair(tok, r, 160)
        groups.append(Group(p, resp))
    # k > 2 responses to one prompt (listwise): add a third and a fourth response
    g0, g1 = groups[0], groups[1]
    groups.append(Group(g0.prompt, [*g0.responses, g1.responses[0], g1.responses[1][:5]]))
    groups.append(Group(g1.prompt, [g1.responses[0]]))  # a single response
    return {"tok": tok, "groups": groups, "model": _tiny.model(tok, hidden=32)}


@pytest.mark.parametrize(
    ("attn", "pack", "dtype"),
    [
        ("sdpa", False, "float64"),
        ("sdpa", True, "float64"),
        ("eager", True, "float64"),
        ("sdpa", False, "float32"),
        ("sdpa", True, "float32"),
    ],
)
def test_shared_equals_unshared(setup: dict[str, Any], attn: str, pack: bool, dtype: str) -> None:
    """float64: to 1e-5 absolute; float32: to 1e-6 relative (a float32 sum of ~-800 has a
    rounding step of 6e-5, so 1e-5 absolute is below float32's resolution there)."""
    import copy

    model = copy.deepcopy(setup["model"]).to(getattr(torch, dtype))
    model.config._attn_implementation = attn
    pad = setup["tok"].pad_token_id
    groups = setup["groups"]
    std = standard_batch(groups, pad)
    sh = shared_batch(groups, pad, pack=pack, max_tokens=600)
    a, na = response_logps(model, std)
    b, nb = response_logps(model, sh)
    assert torch.equal(na, nb)
    assert na.sum() == sum(len(r) for g in groups for r in g.responses)
    if dtype == "float64":
        assert torch.allclose(a, b, atol=1e-5, rtol=0), (a - b).abs().max()
    else:
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-6), (a - b).abs().max()
    # fewer tokens: the prompt is there once per group
    assert sh.real_tokens == sum(g.shared_tokens for g in groups) < std.real_tokens
    if pack:
        assert sh.shape[0] < len(groups)
    # gradients agree too
    model.zero_grad()
    a.sum().backward()
    ga = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    response_logps(model, sh)[0].sum().backward()
    gb = [p.grad.clone() for p in model.parameters()]
    for x, y in zip(ga, gb, strict=True):
        assert torch.allclose(x, y, atol=1e-4, rtol=1e-4)


def test_the_mask_is_what_keeps_responses_apart(setup: dict[str, Any]) -> None:
    """With a plain causal mask over the shared row the rejected response would see the
    chosen one: its log-probs change. The block mask is doing the work."""
    model, pad = setup["model"], setup["tok"].pad_token_id
    groups = setup["groups"][:4]
    sh = shared_batch(groups, pad)
    length = sh.shape[1]
    causal = torch.zeros(sh.shape[0], 1, length, length)
    upper = ~torch.tril(torch.ones(length, length, dtype=torch.bool))
    causal.masked_fill_(upper, torch.finfo(torch.float32).min)
    with torch.no_grad():
        good, _ = response_logps(model, sh)
        bad, _ = response_logps(model, dataclasses.replace(sh, attention_mask=causal))
        ref, _ = response_logps(model, standard_batch(groups, pad))
    chosen = torch.arange(0, len(good), 2)
    rejected = torch.arange(1, len(good), 2)
    close = {"atol": 1e-5, "rtol": 1e-6}
    assert torch.allclose(bad[chosen], ref[chosen], **close)  # chosen comes first: unaffected
    assert (bad[rejected] - ref[rejected]).abs().max() > 1e-2
    assert torch.allclose(good, ref, **close)


def test_packing_respects_the_budget_and_keeps_every_group() -> None:
    groups = [Group(list(range(1, 1 + p)), [[5] * c, [6] * r]) for p, c, r in [(30, 5, 9), (3, 2, 2), (50, 40, 1), (10, 10, 10), (7, 1, 1)]]  # fmt: skip
    b = shared_batch(groups, 0, pack=True, max_tokens=64)
    assert b.shape[1] <= max(64, max(g.shared_tokens for g in groups))
    assert b.n_responses == 10
    assert len(b.target) == sum(len(r) for g in groups for r in g.responses)
    with pytest.raises(ValueError, match="no groups"):
        shared_batch([], 0)
