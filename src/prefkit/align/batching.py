"""Prefix-shared batching: the responses to one prompt share a single copy of the prompt.

A group is one prompt and its responses (chosen and rejected, or k ranked responses). The
prompt is packed once and its responses after it; position ids restart at the end of the
prompt for each response, and a block attention mask lets every response token see the
prompt and the earlier tokens of its own response, never another response (after Wang et al.
2024, "Accelerating Direct Preference Optimization with Prefix Sharing"). With ``pack`` several
groups share a row (block-diagonal between groups) up to a token budget, so rows carry almost
no padding.

Per-response log-probabilities are computed from the hidden states only at the positions
that predict a response token (the last prompt token predicts the first token of every
response), so the full ``(batch, length, vocab)`` logits are never built. The unshared layout
(``standard_batch``: one row per prompt + response, right padding, TRL's default) goes through
the same code, so both give the same log-probs up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class Group:
    """A prompt's token ids and the token ids of its responses (chosen first for pairs)."""

    prompt: list[int]
    responses: list[list[int]]

    @property
    def shared_tokens(self) -> int:
        return len(self.prompt) + sum(len(r) for r in self.responses)

    @property
    def unshared_tokens(self) -> int:
        return len(self.prompt) * len(self.responses) + sum(len(r) for r in self.responses)


@dataclass(frozen=True)
class Batch:
    """Model inputs plus where each response token's log-prob comes from.

    ``src``: flat index (row * length + position) of the hidden state predicting each target
    token; ``target``: its token id; ``owner``: the response it belongs to (0..n_responses-1,
    groups in order, responses in order). ``attention_mask`` is an additive 4D mask
    ``(rows, 1, length, length)`` (None for the standard layout, which uses ``padding_mask``)."""

    input_ids: Tensor
    position_ids: Tensor
    attention_mask: Tensor | None
    padding_mask: Tensor | None
    src: Tensor
    target: Tensor
    owner: Tensor
    n_responses: int
    real_tokens: int

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.input_ids.shape[0]), int(self.input_ids.shape[1])


def _rows_for(groups: Sequence[Group], pack: bool, max_tokens: int | None) -> list[list[int]]:
    """Which groups go into which row: one per row, or greedy first-fit by size."""
    if not pack:
        return [[i] for i in range(len(groups))]
    budget = max_tokens or max(g.shared_tokens for g in groups)
    budget = max(budget, max(g.shared_tokens for g in groups))
    rows: list[list[int]] = []
    used: list[int] = []
    order = sorted(range(len(groups)), key=lambda i: -groups[i].shared_tokens)
    for i in order:
        n = groups[i].shared_tokens
        for r, u in enumerate(used):
            if u + n <= budget:
                rows[r].append(i)
                used[r] += n
                break
        else:
            rows.append([i])
            used.append(n)
    for members in rows:
        members.sort()
    return rows


def shared_batch(
    groups: Sequence[Group],
    pad_id: int,
    pack: bool = False,
    max_tokens: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Batch:
    """The prefix-shared layout of `groups` (packed several to a row with `pack`, rows of at
    most `max_tokens` unless one group alone is longer)."""
    if not groups:
        raise ValueError("no groups to batch")
    rows = _rows_for(groups, pack, max_tokens)
    length = max(sum(groups[i].shared_tokens for i in row) for row in rows)
    n_rows = len(rows)
    ids = np.full((n_rows, length), pad_id, dtype=np.int64)
    pos = np.zeros((n_rows, length), dtype=np.int64)
    gid = np.full((n_rows, length), -1, dtype=np.int64)
    rid = np.full((n_rows, length), -2, dtype=np.int64)  # -1 prompt, >= 0 response slot
    first_resp = np.cumsum([0] + [len(g.responses) for g in groups])
    src: list[int] = []
    target: list[int] = []
    owner: list[int] = []
    for r, row in enumerate(rows):
        o = 0
        for gi in row:
            g = groups[gi]
            p = len(g.prompt)
            ids[r, o : o + p] = g.prompt
            pos[r, o : o + p] = np.arange(p)
            gid[r, o : o + p] = gi
            rid[r, o : o + p] = -1
            last_prompt = o + p - 1
            q = o + p
            for j, resp in enumerate(g.responses):
                n = len(resp)
                ids[r, q : q + n] = resp
                pos[r, q : q + n] = np.arange(p, p + n)
                gid[r, q : q + n] = gi
                rid[r, q : q + n] = j
                who = int(first_resp[gi]) + j
                for t in range(n):
                    s = last_prompt if t == 0 else q + t - 1
                    if s < o:  # empty prompt: the first token has no predictor
                        continue
                    src.append(r * length + s)
                    target.append(resp[t])
                    owner.append(who)
                q += n
            o = q
        # padding: positions continue so nothing repeats; each pad sees only itself
        if o < length:
            pos[r, o:] = np.arange(length - o)
    idx = np.arange(length)
    causal = idx[None, :] <= idx[:, None]
    allowed = (
        (gid[:, :, None] == gid[:, None, :])
        & causal[None]
        & ((rid[:, None, :] == -1) | (rid[:, :, None] == rid[:, None, :]))
    )
    pad = gid < 0
    allowed |= pad[:, :, None] & np.eye(length, dtype=bool)[None]
    allowed &= ~(pad[:, None, :] & ~np.eye(length, dtype=bool)[None])
    mask = torch.zeros((n_rows, 1, length, length), dtype=dtype)
    mask.masked_fill_(~torch.from_numpy(allowed)[:, None], torch.finfo(dtype).min)
    return Batch(
        input_ids=torch.from_numpy(ids),
        position_ids=torch.from_numpy(pos),
        attention_mask=mask,
        padding_mask=None,
        src=torch.tensor(src, dtype=torch.long),
        target=torch.tensor(target, dtype=torch.long),
        owner=torch.tensor(owner, dtype=torch.long),
        n_responses=int(first_resp[-1]),
        real_tokens=int(sum(g.shared_tokens for g in groups)),
    )


def standard_batch(groups: Sequence[Group], pad_id: int) -> Batch:
    """The unshared layout: one right-padded row per (prompt + response), responses ordered
    like `shared_batch` (TRL's collator puts all chosen rows, then all rejected rows)."""
    if not groups:
        raise ValueError("no groups to batch")
    seqs = [(g.prompt, resp) for g in groups for resp in g.responses]
    length = max(len(p) + len(r) for p, r in seqs)
    ids = np.full((len(seqs), length), pad_id, dtype=np.int64)
    attn = np.zeros((len(seqs), length), dtype=np.int64)
    src: list[int] = []
    target: list[int] = []
    owner: list[int] = []
    for k, (p, resp) in enumerate(seqs):
        full = p + resp
        ids[k, : len(full)] = full
        attn[k, : len(full)] = 1
        for t in range(len(resp)):
            s = len(p) + t - 1
            if s < 0:
                continue
            src.append(k * length + s)
            target.append(resp[t])
            owner.append(k)
    pos = np.broadcast_to(np.arange(length), (len(seqs), length)).copy()
    return Batch(
        input_ids=torch.from_numpy(ids),
        position_ids=torch.from_numpy(pos),
        attention_mask=None,
        padding_mask=torch.from_numpy(attn),
        src=torch.tensor(src, dtype=torch.long),
        target=torch.tensor(target, dtype=torch.long),
        owner=torch.tensor(owner, dtype=torch.long),
        n_responses=len(seqs),
        real_tokens=int(sum(g.unshared_tokens for g in groups)),
    )


def _backbone_and_head(model: Any) -> tuple[Any, Any]:
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return m.base_model, m.get_output_embeddings()


def response_logps(model: Any, batch: Batch, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Summed log-prob of each response and its token count, ``(n_responses,)`` each.

    Runs the backbone once over the batch and the LM head only at the predicting positions
    (in chunks of `chunk` tokens); gradients flow when called outside ``torch.no_grad``."""
    backbone, head = _backbone_and_head(model)
    device = head.weight.device
    mask: Tensor | None
    if batch.attention_mask is not None:
        mask = batch.attention_mask.to(device=device, dtype=head.weight.dtype)
    else:
        mask = batch.padding_mask.to(device) if batch.padding_mask is not None else None
    out = backbone(
        input_ids=batch.input_ids.to(device),
        attention_mask=mask,
        position_ids=batch.position_ids.to(device),
        use_cache=False,
    )
    hidden = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])
    src, target, owner = batch.src.to(device), batch.target.to(device), batch.owner.to(device)
    parts = []
    for i in range(0, len(src), chunk):
        h = hidden.index_select(0, src[i : i + chunk])
        logits = head(h).to(hidden.dtype if hidden.dtype == torch.float64 else torch.float32)
        lp = torch.log_softmax(logits, dim=-1)
        parts.append(lp.gather(1, target[i : i + chunk, None]).squeeze(1))
    per_token = torch.cat(parts) if parts else hidden.new_zeros(0)
    sums = per_token.new_zeros(batch.n_responses).index_add(0, owner, per_token)
    counts = torch.zeros(batch.n_responses, dtype=per_token.dtype, device=device).index_add(
        0, owner, torch.ones_like(per_token)
    )
    return sums, counts


def split_pairs(values: Tensor, n_groups: int, k: int = 2) -> Tensor:
    """Responses in group order -> an ``(n_groups, k)`` tensor (chosen = column 0)."""
    return values.reshape(n_groups, k)
