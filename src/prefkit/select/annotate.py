"""`--for annotate`: choose the next N candidate pairs to label (criteria in
`prefkit.select.active`), greedily: after each pick the arena covariance and the diversity
coverage are updated, so a batch does not pile onto one model pair or one topic."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.select.train import Selection

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

MIN_RM_VOTES = 20  # labelled text pairs needed before a feature reward model scores candidates


def _text(messages: Any) -> str:
    from prefkit.schema import messages_text

    return messages_text(messages)


def pair_key(prompt_id: Any, ra: str, rb: str, meta: dict[str, str]) -> tuple[str, bool]:
    """(key of the unordered pair, whether a/b are swapped relative to the key's order)."""
    if meta.get("pair_id"):
        return "id:" + meta["pair_id"], False
    ha = hashlib.blake2b(ra.strip().encode(), digest_size=8).hexdigest()
    hb = hashlib.blake2b(rb.strip().encode(), digest_size=8).hexdigest()
    return f"{prompt_id}\0{min(ha, hb)}\0{max(ha, hb)}", ha > hb


def _is_judge(name: Any, judges: list[str] | None) -> bool:
    if name is None:
        return False
    if judges is not None:
        return str(name) in judges
    return str(name).startswith(("judge:", "judge-", "judge/"))


def judge_disagreement(
    keys: list[str], votes: pa.Table | None, judges: list[str] | None
) -> tuple[F64, int]:
    """Per candidate: 1 − the largest share of one verdict among the judge votes on that pair
    (0 with fewer than two judge votes); and how many candidates have judge votes."""
    out = np.zeros(len(keys))
    if votes is None or votes.num_rows == 0:
        return out, 0
    tally: dict[str, list[int]] = {}
    meta = (
        votes.column("meta").to_pylist()
        if "meta" in votes.column_names
        else [None] * votes.num_rows
    )
    for r, m in zip(votes.select(["prompt_id", "response_a", "response_b", "outcome", "annotator"]).to_pylist(), meta, strict=True):  # fmt: skip
        if not _is_judge(r["annotator"], judges):
            continue
        k, swap = pair_key(
            r["prompt_id"], _text(r["response_a"]), _text(r["response_b"]), dict(m or [])
        )
        o = {"a": 0, "b": 1}.get(str(r["outcome"]), 2)
        if swap and o < 2:
            o = 1 - o
        tally.setdefault(k, [0, 0, 0])[o] += 1
    seen = 0
    for i, k in enumerate(keys):
        t = tally.get(k)
        if t and sum(t) >= 1:
            seen += 1
            if sum(t) >= 2:
                out[i] = 1.0 - max(t) / sum(t)
    return out, seen


def rm_uncertainty(
    prompts: list[str], ra: list[str], rb: list[str], votes: pa.Table | None
) -> tuple[F64 | None, int]:
    """Uncertainty of a feature reward model fitted on the labelled votes about each
    candidate: the information the candidate's label adds about the model
    (`prefkit.select.active.head_info_plan`, greedy), as 1 for the first pick down to 1/n
    for the last; None when fewer than `MIN_RM_VOTES` votes have text."""
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.features import response_features
    from prefkit.select.active import head_info_plan
    from prefkit.select.evaluate import fit_head

    if votes is None or "response_a" not in votes.column_names:
        return None, 0
    p = pairs_from_table(votes)
    keep = [i for i, o in enumerate(p.outcome) if o != "both_bad"]
    if len(keep) < MIN_RM_VOTES:
        return None, len(keep)
    p = p.take(np.array(keep, dtype=np.int64))
    xa, _ = response_features(p.prompts, p.a)
    xb, _ = response_features(p.prompts, p.b)
    both = np.vstack([xa, xb])
    sd = both.std(axis=0) + 1e-9
    d_lab = (xa - xb) / sd
    beta = fit_head(d_lab, p.y)
    ca, _ = response_features(prompts, ra)
    cb, _ = response_features(prompts, rb)
    d_cand = (ca - cb) / sd
    # information each candidate adds about the head (`head_info_plan`), in greedy order: the
    # i-th pick gets 1 - i/n so the combined score keeps that order
    order, _ = head_info_plan(d_lab, beta, d_cand, len(prompts))
    score = np.zeros(len(prompts))
    score[order] = 1.0 - np.arange(order.size) / max(1, order.size)
    return score, len(keep)


def select_annotate(
    items: pa.Table,
    budget: int,
    weights: dict[str, float],
    votes: pa.Table | None = None,
    judges: list[str] | None = None,
    seed: int = 0,
    embeddings: Path | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Choose `budget` of the candidate `items` (a `prefkit serve` items table with two
    responses each) to label next (module doc)."""
    from prefkit.select.active import (
        PLAN_PRIOR,
        bt_scores,
        fisher,
        neighbour_gains,
        uncertainty,
        vote_update,
    )
    from prefkit.select.criteria import prompt_vectors
    from prefkit.select.diversity import knn_graph

    def say(step: str) -> None:
        if progress is not None:
            progress(step)

    rng = np.random.default_rng(seed)
    n = items.num_rows
    rows = items.to_pylist()
    prompts = [_text(r["prompt"]) for r in rows]
    ra = [_text(r["responses"][0]) for r in rows]
    rb = [_text(r["responses"][1]) for r in rows]
    models = [list(r["models"] or [None, None])[:2] for r in rows]
    notes: list[str] = []
    crit: dict[str, Any] = {}
    static = np.zeros(n)
    arena = n > 0 and all(m[0] is not None and m[1] is not None and m[0] != m[1] for m in models)
    theta = cov = None
    names: list[str] = []
    ca = cb = np.zeros(0, np.int64)
    wsum = 0.0

    if arena and ("interval" in weights or "uncertainty" in weights):
        say("Bradley–Terry fit")
        names = sorted({m for pair in models for m in pair})
        vm: tuple[list[str], list[str], list[str]] = ([], [], [])
        if votes is not None and {"model_a", "model_b"} <= set(votes.column_names):
            for a, b, o in zip(votes.column("model_a").to_pylist(), votes.column("model_b").to_pylist(),
                               votes.column("outcome").to_pylist(), strict=True):  # fmt: skip
                if a in names and b in names and a != b and o is not None:
                    vm[0].append(a)
                    vm[1].append(b)
                    vm[2].append(str(o))
        idx = {m: i for i, m in enumerate(names)}
        theta = bt_scores(*vm, names, prior=PLAN_PRIOR)
        ia = np.array([idx[a] for a in vm[0]], dtype=np.int64)
        ib = np.array([idx[b] for b in vm[1]], dtype=np.int64)
        cov = np.asarray(np.linalg.inv(fisher(theta, ia, ib, PLAN_PRIOR)), dtype=np.float64)
        ca = np.array([idx[m[0]] for m in models], dtype=np.int64)
        cb = np.array([idx[m[1]] for m in models], dtype=np.int64)
        crit["arena"] = {"models": len(names), "battles_so_far": len(vm[0])}
    elif "interval" in weights:
        notes.append("interval: candidates are not model pairs (model_a/model_b); left out")

    if "uncertainty" in weights:
        if arena and theta is not None:
            u = uncertainty(ca, cb, theta)
            basis = "Bradley–Terry fit of the battles so far (prior 1)"
        else:
            say("reward model")
            u0, nv = rm_uncertainty(prompts, ra, rb, votes)
            u = np.ones(n) if u0 is None else u0
            basis = (f"information about a feature reward model fitted on {nv} labelled pairs "
                     "(outcome uncertainty x model uncertainty, greedy)" if u0 is not None
                     else f"no reward model yet ({nv} labelled pairs < {MIN_RM_VOTES}): all 1")  # fmt: skip
        static += weights["uncertainty"] * u
        wsum += weights["uncertainty"]
        crit["uncertainty"] = {"weight": weights["uncertainty"], "basis": basis,
                               "mean_all": float(u.mean()) if n else None}  # fmt: skip
    if "disagreement" in weights:
        keys = [pair_key(r["prompt_id"], a, b, dict(r["meta"] or []))[0]
                for r, a, b in zip(rows, ra, rb, strict=True)]  # fmt: skip
        dis, seen = judge_disagreement(keys, votes, judges)
        if seen == 0:
            notes.append("disagreement: no judge votes on the candidates; left out")
            crit["disagreement"] = {"weight": 0.0, "pairs_with_judge_votes": 0}
        else:
            static += weights["disagreement"] * dis
            wsum += weights["disagreement"]
            crit["disagreement"] = {"weight": weights["disagreement"],
                                    "pairs_with_judge_votes": seen,
                                    "pairs_judges_disagree": int((dis > 0).sum())}  # fmt: skip
    w_int = weights.get("interval", 0.0) if arena else 0.0
    graph = None
    w_div = weights.get("diversity", 0.0)
    if "diversity" in weights and n > 1:
        say("embeddings")
        vecs, inv, info = prompt_vectors(
            [str(r["prompt_id"]) for r in rows], prompts, embeddings, cache_dir
        )
        graph = knn_graph(vecs[inv], seed=seed)
        crit["diversity"] = {"weight": w_div, "neighbours": graph.method, **info}
    denom = wsum + w_int + (w_div if graph is not None else 0.0)
    denom = denom or 1.0
    say("choosing")
    k = min(budget, n)
    taken = np.zeros(n, dtype=bool)
    cover = np.zeros(n, dtype=np.float32)
    jitter = rng.random(n) * 1e-9
    chosen: list[int] = []
    parts: list[dict[str, float]] = []
    for _ in range(k):
        val = static.copy()
        g_int = np.zeros(n)
        if w_int > 0 and theta is not None and cov is not None:
            g_int = neighbour_gains(theta, cov, ca, cb, rng)
            mx = float(g_int.max())
            g_int = g_int / mx if mx > 0 else g_int
            val += w_int * g_int
        g_div = np.zeros(n)
        if graph is not None:
            kk = graph.idx.shape[1]
            nb = graph.idx
            gain = np.maximum(graph.sim - cover[np.maximum(nb, 0)], 0.0) * (nb >= 0)
            g_div = (np.maximum(1.0 - cover, 0.0) + gain.sum(axis=1)) / (kk + 1)
            val += w_div * g_div
        val = val / denom + jitter
        val[taken] = -np.inf
        i = int(np.argmax(val))
        chosen.append(i)
        taken[i] = True
        parts.append(
            {"score": float(val[i]), "interval": float(g_int[i]), "diversity": float(g_div[i])}
        )
        if graph is not None:
            cover[i] = 1.0
            ok = graph.idx[i] >= 0
            nbi = graph.idx[i][ok]
            cover[nbi] = np.maximum(cover[nbi], graph.sim[i][ok])
        if w_int > 0 and theta is not None and cov is not None:
            cov = vote_update(theta, cov, int(ca[i]), int(cb[i]))
    if w_int > 0:
        crit["interval"] = {"weight": w_int, "method": "chance of misordering neighbours in a "
                            "ranking drawn from the BT fit's posterior (Thompson sampling; "
                            "Sherman–Morrison update and a new draw after each pick)"}  # fmt: skip
    reasons = []
    for r, (i, pt) in enumerate(zip(chosen, parts, strict=True)):
        bits = [f"score {pt['score']:.3f}"]
        if w_int > 0:
            bits.append(f"interval gain {pt['interval']:.2f} ({models[i][0]} vs {models[i][1]})")
        if "uncertainty" in crit:
            bits.append("uncertain outcome")
        if graph is not None:
            bits.append(f"diversity gain {pt['diversity']:.2f}")
        reasons.append(f"#{r + 1}: " + "; ".join(bits))
    pairs_chosen: dict[str, int] = {}
    if arena:
        for i in chosen:
            key = " vs ".join(sorted(models[i]))
            pairs_chosen[key] = pairs_chosen.get(key, 0) + 1
    summary: dict[str, Any] = {
        "purpose": "annotate",
        "candidates": n,
        "kept": len(chosen),
        "seed": seed,
        "arena": arena,
        "criteria": crit,
        "notes": notes,
    }
    if pairs_chosen:
        summary["model_pairs_chosen"] = dict(sorted(pairs_chosen.items(), key=lambda kv: -kv[1]))
    return Selection(np.array(chosen, dtype=np.int64), reasons, {}, static, summary)
