"""Per-row style features shared by the bias and label-noise checks (vectorised)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.audit.frame import Frame
from prefkit.audit.minhash import U32

F64 = NDArray[np.float64]

LIST = r"(?m)^\s*([-*•+]|\d{1,2}[.)])\s+\S"
HEADER = r"(?m)^\s{0,3}#{1,6}\s+\S"
BOLD = r"\*\*[^*\n]+\*\*|__[^_\n]+__"
REFUSAL = (
    r"(?i)\b(i can['’]?t|i cannot|i can not|i won['’]?t|i will not|i['’]?m (sorry|unable|not able)"
    r"|i am (sorry|unable|not able)|i apologi[sz]e|as an ai|i['’]?m not comfortable"
    r"|i must decline|i do not feel comfortable|i don['’]?t feel comfortable)\b"
)


def style(f: Frame, psig: U32 | None = None, tsig: U32 | None = None) -> dict[str, F64]:
    """Length, formatting (list/header/bold), refusal and prompt overlap of each response."""
    out: dict[str, F64] = {
        "len_a": f.len_a.astype(np.float64),
        "len_b": f.len_b.astype(np.float64),
    }
    for name in ("list", "header", "bold", "refusal"):  # audit.rowwise.row_stats
        out[f"{name}_a"] = np.asarray(f.row[f"{name}_a"], dtype=np.float64)
        out[f"{name}_b"] = np.asarray(f.row[f"{name}_b"], dtype=np.float64)
    if psig is not None and tsig is not None and f.has_text:
        pcode = np.maximum(f.prompt_code, 0)
        out["overlap_a"] = (psig[pcode] == tsig[np.maximum(f.a_code, 0)]).mean(axis=1)
        out["overlap_b"] = (psig[pcode] == tsig[np.maximum(f.b_code, 0)]).mean(axis=1)
    else:
        out["overlap_a"] = np.zeros(f.n)
        out["overlap_b"] = np.zeros(f.n)
    return out


def design(f: Frame, st: dict[str, F64]) -> tuple[F64, list[str]]:
    """Antisymmetric design matrix for P(a wins): swapping a and b negates every column."""
    la, lb = st["len_a"], st["len_b"]
    cols = {
        "log_len_ratio": np.log1p(la) - np.log1p(lb),
        "len_diff_1k": np.clip((la - lb) / 1000.0, -5, 5),
        "list": st["list_a"] - st["list_b"],
        "header": st["header_a"] - st["header_b"],
        "bold": st["bold_a"] - st["bold_b"],
        "refusal": st["refusal_a"] - st["refusal_b"],
        "overlap": st["overlap_a"] - st["overlap_b"],
        "shown_first_a": np.where(f.shown_first == 0, 1.0, np.where(f.shown_first == 1, -1.0, 0.0)),
    }
    names = list(cols)
    return np.column_stack([cols[k] for k in names]), names


def ngram_matrix(texts: pa.Array, min_df: int = 3, max_df: float = 0.5, n: int = 2) -> Any:
    """Binary word 1..`n`-gram presence (scipy CSR, one row per text). The vocabulary is the
    data's own (no hashing): n-grams in at least `min_df` texts and at most a `max_df` share
    of them."""
    from scipy.sparse import csr_matrix

    n_docs = len(texts)
    toks = pc.split_pattern_regex(pc.utf8_lower(pc.fill_null(texts, "")), r"[^\w*#`]+")
    flat = toks.flatten()
    enc = pc.dictionary_encode(flat)
    keep = np.asarray(pc.utf8_length(flat), dtype=np.int64) > 0
    codes = np.asarray(enc.indices, dtype=np.int64)[keep]
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(np.asarray(toks.offsets)))[keep]
    vocab = len(enc.dictionary)
    feats, docs = [codes], [doc]
    offset = vocab
    cur = codes  # code of the (k-1)-gram starting at each position
    for k in range(2, n + 1):
        m = codes.size - k + 1
        if m <= 0:
            break
        _, comp = np.unique(cur[:m] * vocab + codes[k - 1 :], return_inverse=True)
        cur = comp.astype(np.int64)
        same = doc[:m] == doc[k - 1 :]
        feats.append(offset + cur[same])
        docs.append(doc[:m][same])
        offset += int(cur.max()) + 1
    span = offset + 1
    key = np.unique(np.concatenate(docs) * span + np.concatenate(feats))
    dd, feat = key // span, key % span
    df = np.bincount(feat)
    ok = (df[feat] >= min_df) & (df[feat] <= max(min_df, max_df * n_docs))
    _, col = np.unique(feat[ok], return_inverse=True)
    n_col = int(col.max()) + 1 if col.size else 0
    return csr_matrix(
        (np.ones(int(ok.sum())), (dd[ok], col.astype(np.int64))), shape=(n_docs, max(n_col, 1))
    )
