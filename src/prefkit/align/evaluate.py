"""Evaluate a policy against its reference on held-out preference pairs.

- preference accuracy of the implicit reward β·(log π − log π_ref) (ties excluded; ties get
  the mean |reward difference|, which a tie-aware loss shrinks);
- ranking accuracy (does the model give the chosen response the higher likelihood?) of the
  reference and of the policy, and the idealized ranking accuracy of the reference: the
  accuracy an ideal DPO/RLHF optimum reached from that reference would have,
  1[log π_ref(yc)/π_ref(yr) + logit(P)/β > 0], with P = P(chosen ≻ rejected) from ``strength``
  (else 1 − 1e-3; clipped to [1e-3, 1 − 1e-3]), after Chen et al. 2024, "Preference Learning
  Algorithms Do Not Learn Preference Rankings";
- win rate against the reference under a reward model (greedy generations of both models for
  the prompts, scored by ``prefkit.reward.models.load_model``; ties count half) and the mean
  response length drift (policy − reference, in tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.align.data import truncate

F64 = NDArray[np.float64]


def _ids(tok: Any, text: Any, generation: bool = False) -> list[int]:
    if isinstance(text, str):
        out: list[int] = tok(text, add_special_tokens=False)["input_ids"]
        return out
    got = tok.apply_chat_template(text, tokenize=True, add_generation_prompt=generation)
    if isinstance(got, dict) or hasattr(got, "keys"):
        got = got["input_ids"]
    return list(got)


def tokenize_pair(
    tok: Any, row: dict[str, Any], max_length: int | None
) -> tuple[list[int], list[list[int]], bool, bool]:
    """Prompt and response ids the way TRL's DPOTrainer makes them (prompt+response tokenized
    together, EOS added to string responses, the prompt = the common prefix), then the
    align truncation policy."""
    eos = tok.eos_token or ""
    prompt = row["prompt"]
    p_ids = _ids(tok, prompt, generation=True)
    full = []
    for side in ("chosen", "rejected"):
        resp = row[side]
        if isinstance(resp, str):
            text = resp if resp.endswith(eos) else resp + eos
            full.append(_ids(tok, prompt + text))
        else:
            full.append(_ids(tok, list(prompt) + list(resp)))
    k = len(p_ids)
    for f in full:
        n = 0
        for a, b in zip(p_ids, f, strict=False):
            if a != b:
                break
            n += 1
        k = min(k, n)
    return truncate(p_ids[:k], [f[k:] for f in full], max_length)


def pair_logps(
    model: Any,
    tok: Any,
    rows: Sequence[dict[str, Any]],
    max_length: int | None = 512,
    batch_size: int = 16,
) -> tuple[F64, F64, F64, F64]:
    """Summed log-probs and token counts of chosen and rejected under `model` (prefix-shared
    batches, no gradients)."""
    import torch

    from prefkit.align.batching import Group, response_logps, shared_batch

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    lps: list[F64] = []
    cnts: list[F64] = []
    model.eval()
    groups = []
    for r in rows:
        p, resp, _, _ = tokenize_pair(tok, r, max_length)
        groups.append(Group(p, resp))
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for i in range(0, len(groups), batch_size):
            b = shared_batch(groups[i : i + batch_size], pad, dtype=dtype)
            s, c = response_logps(model, b)
            lps.append(s.double().cpu().numpy())
            cnts.append(c.double().cpu().numpy())
    lp = np.concatenate(lps).reshape(-1, 2) if lps else np.zeros((0, 2))
    cn = np.concatenate(cnts).reshape(-1, 2) if cnts else np.zeros((0, 2))
    return lp[:, 0], lp[:, 1], cn[:, 0], cn[:, 1]


def _acc(x: NDArray[np.bool_]) -> float | None:
    return float(x.mean()) if len(x) else None


def idealized_ranking_accuracy(
    ref_chosen: F64, ref_rejected: F64, p: F64, beta: float, clip: float = 1e-3
) -> float | None:
    """Accuracy of the ideal optimum π* ∝ π_ref·exp(r*/β) with σ(r*(yc) − r*(yr)) = P."""
    pc = np.clip(p, clip, 1 - clip)
    logit = np.log(pc) - np.log1p(-pc)
    return _acc((ref_chosen - ref_rejected) + logit / beta > 0)


def preference_metrics(
    policy: tuple[F64, F64], ref: tuple[F64, F64], tie: NDArray[np.bool_], p: F64, beta: float
) -> dict[str, Any]:
    """All likelihood-based metrics from per-pair log-probs."""
    pc, pr = policy
    rc, rr = ref
    margin = beta * ((pc - rc) - (pr - rr))
    clear = ~tie
    out: dict[str, Any] = {
        "pairs": int(len(pc)),
        "ties": int(tie.sum()),
        "reward_accuracy": _acc(margin[clear] > 0),
        "reward_margin_mean": float(margin[clear].mean()) if clear.any() else None,
        "tie_abs_margin_mean": float(np.abs(margin[tie]).mean()) if tie.any() else None,
        "ranking_accuracy_ref": _acc(rc[clear] > rr[clear]),
        "ranking_accuracy_policy": _acc(pc[clear] > pr[clear]),
        "idealized_ranking_accuracy_ref": idealized_ranking_accuracy(
            rc[clear], rr[clear], p[clear], beta
        ),
    }
    return out


def generate(
    model: Any, tok: Any, prompts: Sequence[Any], max_new_tokens: int = 32
) -> tuple[list[str], list[int]]:
    """Greedy continuations of each prompt (text, number of new tokens)."""
    import torch

    texts: list[str] = []
    lens: list[int] = []
    model.eval()
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    with torch.no_grad():
        for pr in prompts:
            ids = torch.tensor([_ids(tok, pr, generation=True) or [eos]])
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=eos,
            )
            new = out[0, ids.shape[1] :].tolist()
            if eos in new:
                new = new[: new.index(eos)]
            texts.append(tok.decode(new, skip_special_tokens=True))
            lens.append(len(new))
    return texts, lens


def win_rate(
    policy: Any,
    ref: Any,
    tok: Any,
    prompts: Sequence[Any],
    scorer: Any,
    max_new_tokens: int = 32,
) -> dict[str, Any]:
    """Win rate of the policy's generations over the reference's under `scorer` (any object
    with ``score(prompts, responses)``, e.g. a prefkit reward model), and the length drift."""
    from prefkit.schema import messages_text

    pol_t, pol_n = generate(policy, tok, prompts, max_new_tokens)
    ref_t, ref_n = generate(ref, tok, prompts, max_new_tokens)
    ptxt = [p if isinstance(p, str) else messages_text(p) for p in prompts]
    sp = np.asarray(scorer.score(ptxt, pol_t), dtype=np.float64)
    sr = np.asarray(scorer.score(ptxt, ref_t), dtype=np.float64)
    wins = (sp > sr).astype(np.float64) + 0.5 * (sp == sr)
    pn, rn = np.asarray(pol_n, dtype=np.float64), np.asarray(ref_n, dtype=np.float64)
    return {
        "prompts": len(prompts),
        "win_rate": float(wins.mean()) if len(wins) else None,
        "ties": int((sp == sr).sum()),
        "mean_length_policy": float(pn.mean()) if len(pn) else None,
        "mean_length_ref": float(rn.mean()) if len(rn) else None,
        "length_drift": float(pn.mean() - rn.mean()) if len(pn) else None,
        "max_new_tokens": max_new_tokens,
    }


def evaluate(
    policy: Any,
    ref: Any,
    tok: Any,
    rows: Sequence[dict[str, Any]],
    beta: float = 0.1,
    max_length: int | None = 512,
    scorer: Any = None,
    n_generate: int = 32,
    max_new_tokens: int = 32,
) -> dict[str, Any]:
    """Likelihood metrics on `rows`, plus win rate / length drift when a scorer is given."""
    pc, pr, _, _ = pair_logps(policy, tok, rows, max_length)
    rc, rr, _, _ = pair_logps(ref, tok, rows, max_length)
    tie = np.array([bool(r.get("tie")) for r in rows], dtype=bool)
    p = np.array(
        [float(r["strength"]) if r.get("strength") is not None else 1.0 for r in rows],
        dtype=np.float64,
    )
    out = preference_metrics((pc, pr), (rc, rr), tie, p, beta)
    out["beta"] = beta
    if scorer is not None:
        seen: dict[str, Any] = {}
        for r in rows:
            key = r["prompt"] if isinstance(r["prompt"], str) else repr(r["prompt"])
            seen.setdefault(key, r["prompt"])
        prompts = list(seen.values())[:n_generate]
        out["generation"] = win_rate(policy, ref, tok, prompts, scorer, max_new_tokens)
    return out
