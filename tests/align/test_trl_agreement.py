"""The losses TRL also implements give TRL's numbers on identical inputs (to 1e-6).

DPOTrainer's losses are inline in its `_compute_loss`: a real `DPOTrainer` over a float64 tiny
Llama and HH harmless pairs computes its loss for each `loss_type` on one collated batch; the
prefkit loss gets log-probs that prefkit computes itself (prefix-shared batch) from the same
model and examples. TRL's fused LM head works in float32 whatever the model's dtype, so the
loss comparison feeds both sides TRL's own per-sequence log-probs (identical tensors); a
separate test checks prefkit's float64 log-probs against TRL's to float32 precision. CPO/SimPO and ORPO are TRL methods called on identical tensors; KTO is a
real `KTOTrainer` on the same model."""

from __future__ import annotations

import copy
import types
from typing import Any

import pytest
import torch
import trl  # noqa: F401  # the [train] extra: missing, these tests fail (never skip)

from prefkit.align.batching import Group, response_logps, shared_batch
from prefkit.align.losses import LOSSES, SPECS, PairLogps, UnpairedLogps
from tests.align import _tiny

pytestmark = [pytest.mark.train]


# prefkit name -> (TRL loss_type, params given to both)
DPO_TYPES: dict[str, tuple[str, dict[str, float]]] = {
    "dpo": ("sigmoid", {}),
    "robust": ("robust", {"label_smoothing": 0.2}),
    "ipo": ("ipo", {}),
    "hinge": ("hinge", {}),
    "exo_pair": ("exo_pair", {"label_smoothing": 1e-3}),
    "nca_pair": ("nca_pair", {}),
    "bco": ("bco_pair", {}),
    "sppo_hard": ("sppo_hard", {}),
    "apo_zero": ("apo_zero", {}),
    "apo_down": ("apo_down", {}),
    "discopop": ("discopop", {"tau": 0.05}),
}


def _short_rows(n: int) -> list[dict[str, Any]]:
    """HH harmless pairs short enough to keep TRL's CPU LM head quick."""
    rows = [r for r in _tiny.hh_rows(600) if len(r["prompt"] + r["chosen"] + r["rejected"]) < 700]
    return rows[:n]


@pytest.fixture(scope="module")
def dpo_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import datasets
    from trl import DPOConfig, DPOTrainer

    rows = _short_rows(40)
    tok = _tiny.tokenizer(_tiny.texts_of(rows))
    policy = _tiny.model(tok).double()
    ref = _tiny.model(tok, seed=1).double()  # a different reference: nonzero log-ratios
    ds = datasets.Dataset.from_list(
        [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        args=DPOConfig(
            output_dir=str(tmp_path_factory.mktemp("trl")),
            per_device_train_batch_size=6,
            report_to=[],
            use_cpu=True,
            max_length=None,
            beta=0.5,
        ),
        train_dataset=ds,
        processing_class=tok,
    )
    examples = [trainer.train_dataset[i] for i in range(6)]
    inputs = trainer._prepare_inputs(trainer.data_collator(examples))
    groups = [Group(e["prompt_ids"], [e["chosen_ids"], e["rejected_ids"]]) for e in examples]
    batch = shared_batch(groups, tok.pad_token_id, dtype=torch.float64)
    with torch.no_grad():
        pol, cnt = response_logps(policy, batch)
        rlp, _ = response_logps(ref, batch)
    ours = PairLogps(
        pol.view(-1, 2)[:, 0],
        pol.view(-1, 2)[:, 1],
        rlp.view(-1, 2)[:, 0],
        rlp.view(-1, 2)[:, 1],
        cnt.view(-1, 2)[:, 0],
        cnt.view(-1, 2)[:, 1],
    )
    # TRL's own per-sequence log-probs of the same batch, as its _compute_loss computes them
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
    kw = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    with torch.no_grad():
        tp = trainer.model(**kw, labels=labels, fused_lm_head=True).log_probs.sum(1)
        tr = trainer.ref_model(**kw, labels=labels, fused_lm_head=True).log_probs.sum(1)
    tc = inputs["completion_mask"].sum(1).to(tp.dtype)
    (pc, pr), (rc, rr), (nc, nr) = tp.chunk(2), tr.chunk(2), tc.chunk(2)
    lp = PairLogps(pc, pr, rc, rr, nc, nr)
    return {"trainer": trainer, "inputs": inputs, "lp": lp, "ours": ours}


@pytest.mark.parametrize("name", sorted(DPO_TYPES))
def test_dpo_trainer_loss_types_match(name: str, dpo_setup: dict[str, Any]) -> None:
    trl_type, params = DPO_TYPES[name]
    assert SPECS[name].trl == ("dpo", trl_type)
    tr = dpo_setup["trainer"]
    tr.loss_types, tr.loss_weights = [trl_type], [1.0]
    tr.label_smoothing = params.get("label_smoothing", 0.0)
    tr.args.discopop_tau = params.get("tau", 0.05)
    with torch.no_grad():
        want = float(tr._compute_loss(tr.model, dpo_setup["inputs"], False))
    ours = LOSSES[name](dpo_setup["lp"], beta=tr.beta, **params)
    got = float(ours.losses.mean())
    assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (name, got, want)
    # TRL logs the implicit rewards: the same ones
    m = tr._metrics["train"]
    assert abs(m["rewards/chosen"][-1] - float(ours.chosen_rewards.mean())) < 1e-6
    assert abs(m["rewards/rejected"][-1] - float(ours.rejected_rewards.mean())) < 1e-6


def test_log_probs_equal_trl_log_probs(dpo_setup: dict[str, Any]) -> None:
    tr = dpo_setup["trainer"]
    tr.loss_types, tr.loss_weights = ["sigmoid"], [1.0]
    with torch.no_grad():
        tr._compute_loss(tr.model, dpo_setup["inputs"], False)
    m = tr._metrics["train"]
    ours = dpo_setup["ours"]
    for key, mine in (("chosen", ours.policy_chosen), ("rejected", ours.policy_rejected)):
        theirs = m[f"logps/{key}"][-1]
        assert abs(theirs - float(mine.mean())) <= 1e-5 * abs(theirs)  # float32 head in TRL
    trl_lp = dpo_setup["lp"]
    assert torch.equal(trl_lp.chosen_tokens.double(), ours.chosen_tokens)
    assert torch.allclose(trl_lp.ref_rejected.double(), ours.ref_rejected, rtol=1e-5)


def _tensors(seed: int = 0, n: int = 7) -> tuple[Any, Any, Any, Any]:
    g = torch.Generator().manual_seed(seed)
    nc = torch.randint(3, 30, (n,), generator=g).double()
    nr = torch.randint(3, 30, (n,), generator=g).double()
    pc = -torch.rand(n, generator=g, dtype=torch.float64) * 3 * nc
    pr = -torch.rand(n, generator=g, dtype=torch.float64) * 3 * nr
    return pc, pr, nc, nr


def _ns(**kw: Any) -> Any:
    return types.SimpleNamespace(accelerator=types.SimpleNamespace(device="cpu"), **kw)


@pytest.mark.parametrize(("name", "loss_type"), [("simpo", "simpo"), ("cpo", "sigmoid")])
def test_cpo_trainer_losses_match(name: str, loss_type: str) -> None:
    from trl.experimental.cpo import CPOTrainer

    pc, pr, nc, nr = _tensors()
    beta, gamma = (2.0, 0.7) if name == "simpo" else (0.1, 0.0)
    ns = _ns(alpha=0.0, beta=beta, loss_type=loss_type, simpo_gamma=gamma, label_smoothing=0.0)
    # TRL averages log-probs over tokens for simpo and sums them for sigmoid
    avg = name == "simpo"
    losses, cr, rr = CPOTrainer.cpo_loss(ns, pc / nc if avg else pc, pr / nr if avg else pr)
    lp = PairLogps(pc, pr, chosen_tokens=nc, rejected_tokens=nr)
    ours = (
        LOSSES["simpo"](lp, beta=beta, gamma=gamma)
        if avg
        else LOSSES["cpo"](lp, beta=beta, alpha=0.0)
    )
    assert torch.allclose(ours.losses, losses.double(), atol=1e-6)
    assert torch.allclose(ours.chosen_rewards, cr.double(), atol=1e-6)
    assert torch.allclose(ours.rejected_rewards, rr.double(), atol=1e-6)
    assert SPECS[name].trl == ("cpo", loss_type)


def test_orpo_odds_ratio_matches() -> None:
    from trl.experimental.orpo import ORPOTrainer

    pc, pr, nc, nr = _tensors(1)
    losses, cr, rr, _, _ = ORPOTrainer.odds_ratio_loss(_ns(beta=0.25), pc / nc, pr / nr)
    ours = LOSSES["orpo"](PairLogps(pc, pr, chosen_tokens=nc, rejected_tokens=nr), beta=0.25)
    # TRL returns +β·log σ(log odds) and subtracts it from the NLL
    assert torch.allclose(ours.parts["odds_ratio"], -losses.double(), atol=1e-6)
    assert torch.allclose(ours.parts["nll"], -pc / nc)
    assert torch.allclose(ours.chosen_rewards, cr.double(), atol=1e-6)
    assert torch.allclose(ours.rejected_rewards, rr.double(), atol=1e-6)


def test_kto_trainer_matches(tmp_path: Any) -> None:
    import datasets
    from trl import KTOConfig, KTOTrainer

    rows = _short_rows(12)
    unpaired = [
        {"prompt": r["prompt"], "completion": r[side], "label": side == "chosen"}
        for r in rows
        for side in ("chosen", "rejected")
    ]
    tok = _tiny.tokenizer(_tiny.texts_of(rows))
    policy = _tiny.model(tok).double()
    ref = _tiny.model(tok, seed=2).double()
    tr = KTOTrainer(
        model=policy,
        ref_model=copy.deepcopy(ref),
        args=KTOConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=8,
            report_to=[],
            use_cpu=True,
            max_length=None,
            beta=0.3,
            desirable_weight=1.5,
            undesirable_weight=0.8,
        ),
        train_dataset=datasets.Dataset.from_list(unpaired),
        processing_class=tok,
    )
    examples = [tr.train_dataset[i] for i in range(8)]
    inputs = tr._prepare_inputs(tr.data_collator(examples))
    with torch.no_grad():
        want = float(tr._compute_loss(tr.model, inputs, False))

    def seq_logps(model: Any, ids: Any, attn: Any, comp: Any) -> Any:
        # TRL's own (float32) fused log-probs, so both sides get identical tensors
        labels = ids.masked_fill(comp == 0, -100)
        out = model(input_ids=ids, attention_mask=attn, labels=labels, fused_lm_head=True)
        return out.log_probs.sum(1)

    with torch.no_grad():
        args = (inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"])
        kl_args = (
            inputs["KL_input_ids"],
            inputs["KL_attention_mask"],
            inputs["KL_completion_mask"],
        )
        pm, rm = tr.model, tr.ref_model
        kl = (seq_logps(pm, *kl_args) - seq_logps(rm, *kl_args)).mean()
        u = UnpairedLogps(seq_logps(pm, *args), seq_logps(rm, *args), inputs["label"], kl)
    ours = LOSSES["kto"](u, beta=0.3, desirable_weight=1.5, undesirable_weight=0.8)
    assert abs(float(ours.losses.mean()) - want) <= 1e-6
