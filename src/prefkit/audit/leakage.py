"""Does the evaluation data leak into training? Prompts (exact and near-duplicate) shared
between splits (`meta.split`) or with a user-given evaluation set (`--against FILE`).

Issues (check `leakage`):

- `split_leak` (error, score 1 exact / similarity near): the row's prompt also occurs in
  another split. Rows of the training split (named `train`, else the largest split) are
  flagged, so dropping them keeps the evaluation split intact.
- `eval_leak` (error, score 1 exact / similarity near): the row's prompt occurs in the
  `against` evaluation set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.audit.findings import Findings, concat_rows, flag_rows
from prefkit.audit.frame import Frame, codes_of, joined_text, normalize
from prefkit.audit.minhash import U32, near_duplicate_clusters, signatures

CHECK = "leakage"


def _flag_leaks(
    parts: list[pa.Table],
    summary: dict[str, Any],
    f: Frame,
    issue: str,
    flagged: np.ndarray,
    score: np.ndarray,
    exact: str,
    near: str,
) -> None:
    """Leaked rows: exact matches (score 1) are errors, near ones (similarity) warnings."""
    sc = score[flagged]
    flag_rows(
        parts,
        summary,
        f"{issue}_rows",
        f.take_ids(flagged),
        CHECK,
        issue,
        sc,
        np.where(sc >= 1, "error", "warning").tolist(),
        [exact if s >= 1 else near.format(s=s) for s in sc],
    )


def _train_split(f: Frame) -> int:
    names = [s.lower() for s in f.splits]
    for want in ("train", "training"):
        if want in names:
            return names.index(want)
    counts = np.bincount(f.split[f.split >= 0], minlength=len(f.splits))
    return int(np.argmax(counts))


def find_leakage(
    f: Frame,
    against: pa.Table | None = None,
    threshold: float = 0.8,
    near: bool = True,
    prompt_sig: U32 | None = None,
) -> Findings:
    summary: dict[str, Any] = {"splits": {}, "threshold": threshold}
    parts: list[pa.Table] = []
    psig: U32 | None = prompt_sig
    if near and f.has_text and psig is None and (len(f.splits) > 1 or against is not None):
        psig = signatures(f.prompts)
    if len(f.splits) > 1:
        ns = len(f.splits)
        summary["splits"] = {
            s: int(c)
            for s, c in zip(f.splits, np.bincount(f.split[f.split >= 0], minlength=ns), strict=True)
        }
        train = _train_split(f)
        summary["reference_split"] = f.splits[train]
        ok = f.split >= 0
        # prompt -> set of splits (as a bit mask; up to 62 splits)
        mask = np.zeros(len(f.prompt_set) + 1, dtype=np.int64)
        np.bitwise_or.at(mask, f.prompt_code[ok], np.left_shift(1, f.split[ok]).astype(np.int64))
        score = np.zeros(f.n)
        multi = (mask & (mask - 1)) != 0  # more than one bit set
        score[ok & multi[f.prompt_code]] = 1.0
        if psig is not None and near:
            labels, i, j, sim = near_duplicate_clusters(psig, threshold)
            cmask = np.zeros(int(labels.max()) + 1, dtype=np.int64)
            np.bitwise_or.at(cmask, labels, mask[: len(labels)])
            cmulti = (cmask & (cmask - 1)) != 0
            best = np.zeros(len(labels))
            np.maximum.at(best, i, sim)
            np.maximum.at(best, j, sim)
            lab_rows = labels[np.maximum(f.prompt_code, 0)]
            near_rows = ok & cmulti[lab_rows] & (score == 0)
            score[near_rows] = best[f.prompt_code[near_rows]]
        flagged = np.flatnonzero((score > 0) & (f.split == train))
        leaked_eval = int(((score > 0) & (f.split != train) & ok).sum())
        summary["eval_rows_with_leaked_prompt"] = leaked_eval
        _flag_leaks(
            parts,
            summary,
            f,
            "split_leak",
            flagged,
            score,
            "prompt also in another split",
            "prompt ~{s:.2f} similar to one in another split",
        )
    else:
        summary["split_leak_rows"] = 0
    if against is not None:
        ev = normalize(joined_text(against.column("prompt")))
        _, ev_prompts = codes_of(ev)
        exact = np.zeros(len(f.prompt_set), dtype=bool)
        for pcodes, prompts in f.prompt_set.chunks():
            exact[pcodes] = np.asarray(pc.is_in(prompts, value_set=ev_prompts), dtype=bool)
        score_p = exact.astype(np.float64)
        if near and psig is not None:
            esig = signatures(ev_prompts)
            both = np.concatenate([psig, esig])
            labels, i, j, sim = near_duplicate_clusters(both, threshold)
            npr = len(f.prompt_set)
            has_eval = np.zeros(int(labels.max()) + 1, dtype=bool)
            has_eval[labels[npr:]] = True
            best = np.zeros(len(labels))
            cross = (i < npr) != (j < npr)
            np.maximum.at(best, i[cross], sim[cross])
            np.maximum.at(best, j[cross], sim[cross])
            near_p = has_eval[labels[:npr]] & ~exact
            score_p[near_p] = np.maximum(best[:npr][near_p], threshold)
        score = np.where(f.prompt_code >= 0, score_p[np.maximum(f.prompt_code, 0)], 0.0)
        flagged = np.flatnonzero(score > 0)
        summary["against_prompts"] = int(len(ev_prompts))
        _flag_leaks(
            parts,
            summary,
            f,
            "eval_leak",
            flagged,
            score,
            "prompt is in the evaluation set",
            "prompt ~{s:.2f} similar to an evaluation prompt",
        )
        summary["eval_leak_exact_rows"] = int((score[flagged] >= 1).sum())
    rows = concat_rows(parts)
    summary["rows_flagged"] = int(rows.num_rows)
    return Findings(CHECK, rows, summary)
