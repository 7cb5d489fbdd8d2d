"""Per-row style features shared by the bias and label-noise checks (vectorised)."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.audit.frame import Frame
from prefkit.audit.minhash import U32, distinct, similarity

F64 = NDArray[np.float64]

LIST = r"(?m)^\s*([-*•+]|\d{1,2}[.)])\s+\S"
HEADER = r"(?m)^\s{0,3}#{1,6}\s+\S"
BOLD = r"\*\*[^*\n]+\*\*|__[^_\n]+__"
REFUSAL = (
    r"(?i)\b(i can['’]?t|i cannot|i can not|i won['’]?t|i will not|i['’]?m (sorry|unable|not able)"
    r"|i am (sorry|unable|not able)|i apologi[sz]e|as an ai|i['’]?m not comfortable"
    r"|i must decline|i do not feel comfortable|i don['’]?t feel comfortable)\b"
)


Style: TypeAlias = dict[str, NDArray[Any]]


def style(f: Frame, psig: U32 | None = None, tsig: U32 | None = None) -> Style:
    """Length, formatting (list/header/bold), refusal and prompt overlap of each response.

    Compact and mostly shared: the lengths are the frame's own arrays (int64), the flags are
    int8 views of the frame's row statistics (0/1), the overlaps float32 (a MinHash estimate
    is k/64, exact in float32); so a table of millions of rows holds no float64 copy of them.
    Arithmetic on them (`design`) gives the same float64 values as float64 inputs would."""
    out: Style = {"len_a": f.len_a, "len_b": f.len_b}
    for name in ("list", "header", "bold", "refusal"):  # audit.rowwise.row_stats
        for side in ("a", "b"):
            flag = np.ascontiguousarray(f.row[f"{name}_{side}"], dtype=np.bool_)
            out[f"{name}_{side}"] = flag.view(np.int8)
    if psig is not None and tsig is not None and f.has_text:
        pcode = np.maximum(f.prompt_code, 0)
        for side, code in (("a", f.a_code), ("b", f.b_code)):
            sim = similarity(psig, pcode, np.maximum(code, 0), tsig)
            out[f"overlap_{side}"] = sim.astype(np.float32)
    else:
        out["overlap_a"] = np.zeros(f.n, dtype=np.float32)
        out["overlap_b"] = np.zeros(f.n, dtype=np.float32)
    return out


DESIGN = (
    "log_len_ratio", "len_diff_1k", "list", "header", "bold", "refusal", "overlap",
    "shown_first_a",
)  # fmt: skip


def design(
    f: Frame, st: Style, rows: NDArray[np.integer] | NDArray[np.bool_] | None = None
) -> tuple[F64, list[str]]:
    """Antisymmetric design matrix for P(a wins): swapping a and b negates every column. With
    `rows` (indices or a mask), the matrix of those rows only (the same values as those rows
    of the whole matrix): large tables build it a part at a time."""

    def col(name: str) -> NDArray[Any]:
        x = st[name]
        return x if rows is None else x[rows]

    la = col("len_a").astype(np.float64)
    lb = col("len_b").astype(np.float64)
    sf = f.shown_first if rows is None else f.shown_first[rows]
    cols = {
        "log_len_ratio": np.log1p(la) - np.log1p(lb),
        "len_diff_1k": np.clip((la - lb) / 1000.0, -5, 5),
        "list": col("list_a").astype(np.float64) - col("list_b"),
        "header": col("header_a").astype(np.float64) - col("header_b"),
        "bold": col("bold_a").astype(np.float64) - col("bold_b"),
        "refusal": col("refusal_a").astype(np.float64) - col("refusal_b"),
        "overlap": col("overlap_a").astype(np.float64) - col("overlap_b"),
        "shown_first_a": np.where(sf == 0, 1.0, np.where(sf == 1, -1.0, 0.0)),
    }
    names = list(DESIGN)
    return np.column_stack([cols[k] for k in names]), names


U64 = NDArray[np.uint64]
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _ngram_keys(texts: pa.Array, n: int = 2) -> tuple[NDArray[np.int64], U64]:
    """(text index, 64-bit key) of every word 1..`n`-gram occurrence of `texts` (lower-cased
    words, split at anything but word characters, `*`, `#` and backticks). A key hashes the n-gram's words
    (polars' 64-bit string hash, chained), so the same n-gram gets the same key in any batch."""
    import polars as pl

    toks = pc.split_pattern_regex(pc.utf8_lower(pc.fill_null(texts, "")), r"[^\w*#`]+")
    if isinstance(toks, pa.ChunkedArray):
        toks = toks.combine_chunks()
    flat = toks.flatten()
    keep = np.asarray(pc.utf8_length(flat), dtype=np.int64) > 0
    h = pl.Series(flat.cast(pa.large_string())).hash(seed=0).to_numpy()[keep]
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(np.asarray(toks.offsets)))
    doc = doc[keep]
    keys, docs = [h], [doc]
    cur = h  # key of the (k-1)-gram starting at each position
    for k in range(2, n + 1):
        m = h.size - k + 1
        if m <= 0:
            break
        cur = cur[:m] * _MIX + h[k - 1 :]
        same = doc[:m] == doc[k - 1 :]
        keys.append(cur[same])
        docs.append(doc[:m][same])
    return np.concatenate(docs), np.concatenate(keys)


def _presence(doc: NDArray[np.int64], col: NDArray[np.int64], shape: tuple[int, int]) -> Any:
    """Binary CSR matrix with a 1 at each (doc, col) (repeats count once)."""
    from scipy.sparse import csr_matrix

    m = csr_matrix((np.ones(doc.size), (doc, col)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


NGRAM_CHUNK = 16_384  # texts per chunk while n-grams are counted or a matrix is built
MERGE_KEYS = 1 << 23  # per-chunk n-gram counts held before they are merged into one


def _doc_freq(doc: NDArray[np.int64], key: U64, n_docs: int) -> tuple[U64, NDArray[np.int64]]:
    """The distinct keys (sorted) and the number of documents holding each."""
    uniq = np.asarray(distinct(key), dtype=np.uint64)
    if uniq.size == 0:
        return uniq, np.zeros(0, dtype=np.int64)
    inv = np.searchsorted(uniq, key).astype(np.int64)
    df = np.bincount(_presence(doc, inv, (n_docs, uniq.size)).indices, minlength=uniq.size)
    return uniq, df.astype(np.int64)


def _merge_counts(
    keys: list[U64], counts: list[NDArray[np.int64]]
) -> tuple[U64, NDArray[np.int64]]:
    """Sorted distinct keys of several (keys, counts) and their summed counts."""
    k = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    c = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    if len(keys) <= 1 or k.size == 0:
        return k, c
    order = np.argsort(k)
    k, c = k[order], c[order]
    start = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
    return k[start], np.add.reduceat(c, start)


def _vocab(doc: NDArray[np.int64], key: U64, n_docs: int, min_df: int, max_df: float) -> U64:
    uniq, df = _doc_freq(doc, key, n_docs)
    return np.asarray(uniq[(df >= min_df) & (df <= max(min_df, max_df * n_docs))])


def ngram_vocab(
    texts: pa.Array, min_df: int = 3, max_df: float = 0.5, n: int = 2, chunk: int = NGRAM_CHUNK
) -> U64:
    """The n-gram vocabulary of `texts` (sorted keys, see `ngram_matrix`): n-grams in at least
    `min_df` texts and at most a `max_df` share of them. Document frequencies are counted
    `chunk` texts at a time and merged (memory: the distinct n-grams, not every occurrence)."""
    n_docs = len(texts)
    keys: list[U64] = []
    counts: list[NDArray[np.int64]] = []
    held = 0
    for s in range(0, n_docs, chunk):
        part = texts.slice(s, chunk)
        doc, key = _ngram_keys(part, n)
        u, df = _doc_freq(doc, key, len(part))
        del doc, key
        keys.append(u)
        counts.append(df)
        held += u.size
        if held > MERGE_KEYS and len(keys) > 1:
            k, c = _merge_counts(keys, counts)
            keys, counts, held = [k], [c], k.size
    uniq, df = _merge_counts(keys, counts)
    return np.asarray(uniq[(df >= min_df) & (df <= max(min_df, max_df * n_docs))])


def _matrix(
    texts: pa.Array, vocab: U64 | None, n: int, min_df: int = 3, max_df: float = 0.5
) -> Any:
    n_docs = len(texts)
    doc, key = _ngram_keys(texts, n)
    if vocab is None:
        vocab = _vocab(doc, key, n_docs, min_df, max_df)
    if vocab.size == 0:
        from scipy.sparse import csr_matrix

        return csr_matrix((n_docs, 1))
    pos = np.minimum(np.searchsorted(vocab, key), vocab.size - 1)
    hit = vocab[pos] == key
    return _presence(doc[hit], pos[hit].astype(np.int64), (n_docs, vocab.size))


def ngram_matrix(
    texts: pa.Array,
    min_df: int = 3,
    max_df: float = 0.5,
    n: int = 2,
    vocab: U64 | None = None,
    chunk: int = NGRAM_CHUNK,
) -> Any:
    """Binary word 1..`n`-gram presence (scipy CSR, one row per text, one column per entry of
    the vocabulary). The vocabulary is the data's own (`ngram_vocab(texts, min_df, max_df)`)
    unless a fixed one is given — e.g. built on a sample, then applied to every batch of texts
    (a text's row depends on that text and the vocabulary only, so with a fixed vocabulary
    the matrix is built `chunk` texts at a time and stacked)."""
    n_docs = len(texts)
    if vocab is None or n_docs <= chunk:
        return _matrix(texts, vocab, n, min_df, max_df)
    if vocab.size == 0:
        from scipy.sparse import csr_matrix

        return csr_matrix((n_docs, 1))
    from scipy.sparse import vstack

    blocks = [_matrix(texts.slice(s, chunk), vocab, n) for s in range(0, n_docs, chunk)]
    return vstack(blocks, format="csr")
