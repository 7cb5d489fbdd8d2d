"""Is anything in here twice? Exact and near-duplicate prompts and pairs, identical
responses inside a pair, and the same pair judged twice with opposite outcomes.

Issues (all in check `duplicates`):

- `exact_duplicate` (warning, score 1): same prompt, same two responses (either order),
  same annotator (or none) and the same outcome. The fix keeps the first row of each group.
- `contradiction` (error, score 1): same pair and annotator (or none), opposite decisive
  outcomes (a vs b after aligning the order).
- `identical_responses` (error, score 1): both responses have the same normalized text.
- `near_duplicate_pair` (warning, score = similarity): another pair whose prompt and both
  responses have estimated Jaccard similarity ≥ threshold (MinHash/LSH, 8-byte word shingles).
- `near_duplicate_prompt` (info, score = similarity / 2): different prompts that are near
  duplicates of each other (rows sharing one exact prompt are normal and not flagged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.audit.findings import (
    Findings,
    concat_rows,
    distinct_rows,
    flag_rows,
    format_each,
    make_rows,
)
from prefkit.audit.frame import Frame, combine_codes
from prefkit.audit.minhash import (
    U32,
    near_duplicate_clusters,
    signatures,
    similarity,
)

CHECK = "duplicates"
I64 = NDArray[np.int64]


def _group_sizes(key: I64) -> I64:
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    return np.asarray(cnt[inv], dtype=np.int64)


def _best_sim(n: int, i: I64, j: I64, sim: NDArray[np.float64]) -> NDArray[np.float64]:
    best = np.zeros(n)
    np.maximum.at(best, i, sim)
    np.maximum.at(best, j, sim)
    return best


def find_duplicates(
    f: Frame,
    threshold: float = 0.8,
    near: bool = True,
    prompt_sig: U32 | None = None,
    text_sig: U32 | None = None,
) -> Findings:
    """Run the duplicate checks on a prepared frame (see module docstring)."""
    parts: list[pa.Table] = []
    summary: dict[str, Any] = {"threshold": threshold}
    n = f.n
    if n == 0:
        return Findings(CHECK, summary=summary | {"rows": 0})
    pk = f.pair_key
    # exact duplicates: every field that identifies a vote is equal (Frame.duplicate_group)
    grp = f.duplicate_group
    dup = np.flatnonzero(grp >= 0)
    summary["exact_duplicate_rows"] = int(f.is_copy.sum())
    summary["exact_duplicate_groups"] = int(np.unique(grp[dup]).size)
    if dup.size:
        size = _group_sizes(grp[dup])
        for named, sev in ((True, "error"), (False, "warning")):
            sel = dup[f.identified[dup] == named]
            if not sel.size:
                continue
            what = (
                "pair, outcome, annotator, rationale and meta"
                if named
                else "every field (no annotator, rationale or meta to tell two votes apart)"
            )
            parts.append(
                make_rows(
                    CHECK,
                    "exact_duplicate",
                    f.take_ids(sel),
                    1.0,
                    sev,
                    format_each(
                        "same " + what + " as {} other row(s)",
                        size[np.searchsorted(dup, sel)].astype(np.int64) - 1,
                    ),
                    group=format_each("x{}", grp[sel]),
                )
            )
    # contradictions: the same known annotator, the same pair (either order) and aspect,
    # both a and b among the aligned outcomes; unknown annotators disagreeing is agreement
    co = f.canonical_outcome
    same = combine_codes(pk, f.annotator, f.aspect)
    known = f.annotator >= 0
    has_a = np.zeros(int(same.max()) + 1, dtype=bool)
    has_b = np.zeros_like(has_a)
    has_a[same[known & (co == 0)]] = True
    has_b[same[known & (co == 1)]] = True
    contra = np.flatnonzero(known & has_a[same] & has_b[same] & (co <= 1))
    summary["contradiction_pairs"] = int(np.unique(same[contra]).size)
    flag_rows(
        parts,
        summary,
        "contradiction_rows",
        f.take_ids(contra),
        CHECK,
        "contradiction",
        1.0,
        "error",
        "the same annotator gave opposite answers on this pair",
        group=[f"c{g}" for g in same[contra]],
    )
    # several votes on one pair by unknown annotators: votes, counted in agreement
    anon = np.flatnonzero(~known & ~f.is_copy)
    if anon.size:
        _, cnt = np.unique(pk[anon], return_counts=True)
        summary["pairs_with_votes_by_unknown_annotators"] = int((cnt > 1).sum())
    else:
        summary["pairs_with_votes_by_unknown_annotators"] = 0
    # identical responses
    if f.has_text:
        ident = np.flatnonzero(f.a_code == f.b_code)
        flag_rows(
            parts,
            summary,
            "identical_response_rows",
            f.take_ids(ident),
            CHECK,
            "identical_responses",
            1.0,
            "error",
            "response_a and response_b have the same normalized text",
        )
    else:
        summary["identical_response_rows"] = 0
    counts = np.bincount(f.prompt_code[f.prompt_code >= 0])
    summary["distinct_prompts"] = int(counts.size)
    summary["distinct_pairs"] = int(np.unique(pk).size)
    summary["rows_with_repeated_prompt"] = int(counts[counts > 1].sum())
    if near and f.has_text:
        parts.extend(_near(f, threshold, summary, prompt_sig, text_sig))
    else:
        summary["near_duplicate_prompt_rows"] = 0
        summary["near_duplicate_pair_rows"] = 0
    rows = concat_rows(parts)
    summary["rows_flagged"] = distinct_rows(rows)
    return Findings(CHECK, rows, summary)


def _near(
    f: Frame,
    threshold: float,
    summary: dict[str, Any],
    prompt_sig: U32 | None,
    text_sig: U32 | None,
) -> list[pa.Table]:
    parts: list[pa.Table] = []
    psig = prompt_sig if prompt_sig is not None else signatures(f.prompts)
    labels, i, j, sim = near_duplicate_clusters(psig, threshold)
    # prompt clusters with more than one distinct prompt
    csize = np.bincount(labels)
    in_near = csize[labels] > 1
    best = _best_sim(len(labels), i, j, sim)
    rows = f.prompt_rows(in_near)
    summary["near_duplicate_prompt_clusters"] = int((csize > 1).sum())
    pc_ = f.prompt_code[rows]
    flag_rows(
        parts,
        summary,
        "near_duplicate_prompt_rows",
        f.take_ids(rows),
        CHECK,
        "near_duplicate_prompt",
        best[pc_] / 2,
        "info",
        format_each("prompt ~{:.2f} similar to another prompt", best[pc_]),
        group=format_each("p{}", labels[pc_]),
    )
    # near-duplicate pairs: same prompt cluster and the same two response clusters
    tsig = text_sig if text_sig is not None else signatures(f.texts)
    tlab, ti, tj, tsim = near_duplicate_clusters(tsig, threshold)
    pk = f.pair_key
    uniq, first = np.unique(pk, return_index=True)
    u = len(uniq)
    x = tlab[np.maximum(f.a_code[first], 0)]
    y = tlab[np.maximum(f.b_code[first], 0)]
    p = labels[np.maximum(f.prompt_code[first], 0)]
    near_key = combine_codes(p, np.minimum(x, y), np.maximum(x, y))
    # candidate groups chain (a ~ b ~ c while a ≁ c): within each group, pairs are compared
    # with each other (all of them up to MAX_GROUP, else each with its neighbours in the
    # group) and only edges ≥ threshold join two pairs; groups are the components
    order = np.argsort(near_key, kind="stable")
    nk = near_key[order]
    starts = np.flatnonzero(np.r_[True, nk[1:] != nk[:-1]])
    sizes = np.diff(np.r_[starts, u])
    e1: list[I64] = []
    e2: list[I64] = []
    for st, k in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        members = order[st : st + k]
        if k <= MAX_GROUP:
            ii, jj = np.triu_indices(k, 1)
        else:
            ii = np.concatenate([np.zeros(k - 1, dtype=np.int64), np.arange(k - 1)])
            jj = np.concatenate([np.arange(1, k), np.arange(1, k)])
        e1.append(members[ii])
        e2.append(members[jj])
    pbest = np.zeros(u)
    plab = np.arange(u, dtype=np.int64)
    if e1:
        ea, eb = np.concatenate(e1), np.concatenate(e2)
        sim = _pair_similarity(f, first[ea], first[eb], psig, tsig)
        keep = sim >= threshold
        ea, eb, sim = ea[keep], eb[keep], sim[keep]
        np.maximum.at(pbest, ea, sim)
        np.maximum.at(pbest, eb, sim)
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(ea.size), (ea, eb)), shape=(u, u))
        plab = connected_components(graph, directed=False)[1].astype(np.int64)
    psize = np.bincount(plab)
    member = psize[plab] > 1
    row_u = np.searchsorted(uniq, pk)
    rows = np.flatnonzero(member[row_u])
    summary["near_duplicate_pair_clusters"] = int((psize > 1).sum())
    ru = row_u[rows]
    flag_rows(
        parts,
        summary,
        "near_duplicate_pair_rows",
        f.take_ids(rows),
        CHECK,
        "near_duplicate_pair",
        pbest[ru],
        "info",
        format_each("pair ~{:.2f} similar to another pair", pbest[ru]),
        group=format_each("n{}", plab[ru]),
    )
    return parts


MAX_GROUP = 64


def _pair_similarity(f: Frame, r1: I64, r2: I64, psig: U32, tsig: U32) -> NDArray[np.float64]:
    """Estimated similarity of the pairs of rows r1 and r2: the prompts' Jaccard and the
    responses' (either order), the smallest of the three."""

    def s(i1: I64, i2: I64, sig: U32) -> NDArray[np.float64]:
        return similarity(sig, np.maximum(i1, 0), np.maximum(i2, 0))

    a1, b1, a2, b2 = f.a_code[r1], f.b_code[r1], f.a_code[r2], f.b_code[r2]
    sp = s(f.prompt_code[r1], f.prompt_code[r2], psig)
    straight = np.minimum(s(a1, a2, tsig), s(b1, b2, tsig))
    crossed = np.minimum(s(a1, b2, tsig), s(b1, a2, tsig))
    return np.asarray(np.minimum(sp, np.maximum(straight, crossed)), dtype=np.float64)


def shingle_set(text: str) -> set[bytes]:
    """The shingles MinHash uses: 8 bytes from each word start (see minhash.signatures)."""
    b = text.encode("utf-8")
    if len(b) < 8:
        return {b} if b else set()
    starts = [0] + [i + 1 for i, c in enumerate(b) if c == 32]
    return {b[i : i + 8] for i in starts if i + 8 <= len(b)}


def _jaccard(x: set[bytes], y: set[bytes]) -> float:
    if not x and not y:
        return 1.0
    return len(x & y) / len(x | y)
