"""Vectorised MinHash (one-permutation hashing with densification) and LSH on numpy.

Texts are shingled into byte n-grams, each shingle is hashed once (splitmix64), the hash
picks one of `k` bins and the minimum per bin is the signature. The fraction of equal bins
between two signatures estimates the Jaccard similarity of their shingle sets. This does in
one pass over the bytes what `datasketch.MinHash` does per document and per permutation.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

U32 = NDArray[np.uint32]
I64 = NDArray[np.int64]

_MAX = np.uint32(0xFFFFFFFF)
_NGRAM = 8
SMALL_BUCKET = 16


def _splitmix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def signatures(
    texts: pa.Array, k: int = 64, chunk_bytes: int = 1 << 24, salt: I64 | None = None
) -> U32:
    """MinHash signature (len(texts) x k, uint32) of each text's set of shingles.

    A shingle is the 8 bytes starting at a word start (texts are expected normalized, so
    words are separated by single spaces).

    `k` must be a power of two. Texts shorter than 8 bytes (and empty texts) get a
    signature that matches nothing (exact duplicates are found separately), drawn from the
    text's position in `texts`, or from `salt[i]` when given (its position in another
    batching of the texts: the same signatures whatever batches they are computed in).
    """
    if k & (k - 1) or not 2 <= k <= 64:
        raise ValueError("k must be a power of two in 2..64")
    arr = texts.cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    sig = np.full((n, k), _MAX, dtype=np.uint32)
    if n == 0:
        return sig
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1].copy()
    if arr.null_count:
        lens = np.diff(offsets) * np.asarray(arr.is_valid())
    else:
        lens = np.diff(offsets)
    if bufs[2] is None or offsets[-1] == offsets[0]:
        _densify(sig, salt)
        return sig
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    shift = np.uint64(64 - int(np.log2(k)))
    start = 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + chunk_bytes, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        lo, hi = int(offsets[start]), int(offsets[stop])
        m = hi - lo - _NGRAM + 1
        if m > 0:
            # every 8-byte window as one little-endian uint64 (a strided view, no copy)
            ends = offsets[start + 1 : stop + 1] - lo  # window i is valid if i + 8 <= end
            starts = offsets[start:stop] - lo
            win = np.ndarray((m,), dtype="<u8", buffer=data, offset=lo, strides=(1,))
            # shingles start at word starts only (after a space or at a document start):
            # five times fewer than every window, and the same choice in every document
            ok = np.empty(m, dtype=bool)
            ok[1:] = data[lo : lo + m - 1] == 32
            ok[0] = True
            ok[starts[starts < m]] = True
            bad = (ends[:, None] - np.arange(1, _NGRAM, dtype=np.int64)[None, :]).ravel()
            bad_ok = (bad >= np.repeat(starts, _NGRAM - 1)) & (bad < m)
            ok[bad[bad_ok]] = False
            pos = np.flatnonzero(ok)
            doc = np.searchsorted(starts, pos, side="right") - 1
            valid = lens[start:stop] > 0  # null texts have no shingles
            if not valid.all():
                keep = valid[doc]
                pos, doc = pos[keep], doc[keep]
            h = _splitmix(win[pos].astype(np.uint64))
            # sort (doc, bin, value) packed in one uint64; the first of each (doc, bin) is
            # its minimum
            packed = (
                (doc.astype(np.uint64) << np.uint64(38))
                | ((h >> shift) << np.uint64(32))
                | (h & np.uint64(0xFFFFFFFF))
            )
            packed.sort()
            cell = packed >> np.uint64(32)
            first = np.ones(len(packed), dtype=bool)
            first[1:] = cell[1:] != cell[:-1]
            cell = cell[first]
            cell_idx = (cell >> np.uint64(6)).astype(np.int64) * k + (cell & np.uint64(63)).astype(
                np.int64
            )
            block = sig[start:stop].reshape(-1)
            block[cell_idx] = (packed[first] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            sig[start:stop] = block.reshape(stop - start, k)
        start = stop
    _densify(sig, salt)
    return sig


def _densify(sig: U32, salt: I64 | None = None) -> None:
    """Fill empty bins from the next non-empty bin (rotation); no-shingle rows get unique values."""
    empty = sig == _MAX
    rows = np.flatnonzero(empty.any(axis=1))
    if rows.size == 0:
        return
    sub = sig[rows]
    sub_empty = empty[rows]
    none = sub_empty.all(axis=1)
    k = sig.shape[1]
    filled = sub.copy()
    todo = sub_empty & ~none[:, None]
    for dist in range(1, k):
        if not todo.any():
            break
        src = np.roll(sub, -dist, axis=1)
        src_ok = ~np.roll(sub_empty, -dist, axis=1)
        take = todo & src_ok
        filled[take] = (src[take].astype(np.uint64) + np.uint64(dist * 0x9E3779B1)).astype(
            np.uint32
        )
        todo &= ~take
    if none.any():
        # documents without a shingle: a signature unique to the row (never a near-duplicate)
        ids = (rows[none] if salt is None else salt[rows[none]]).astype(np.uint64)
        mix = _splitmix(ids[:, None] * np.uint64(k) + np.arange(k, dtype=np.uint64)[None, :])
        filled[none] = (mix & np.uint64(0xFFFFFFFE)).astype(np.uint32)
    sig[rows] = filled


CHUNK = 1 << 18  # pairs per chunk of `similarity` (two chunks of signatures: 128 MiB)


def similarity(sig: U32, i: I64, j: I64, other: U32 | None = None) -> NDArray[np.float64]:
    """Estimated Jaccard similarity of rows i of `sig` and rows j of `other` (default: `sig`),
    element-wise, a chunk of pairs at a time (memory does not grow with the pairs)."""
    o = sig if other is None else other
    out = np.empty(i.size, dtype=np.float64)
    for s in range(0, i.size, CHUNK):
        out[s : s + CHUNK] = (sig[i[s : s + CHUNK]] == o[j[s : s + CHUNK]]).mean(axis=1)
    return out


def distinct(x: NDArray[np.generic]) -> NDArray[np.generic]:
    """Sorted distinct values, by a sort (numpy 2.4's hash-based `np.unique` is far slower on
    millions of 64-bit keys and needs more memory)."""
    s = np.sort(x)
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if s.size else s


def candidate_pairs(sig: U32, bands: int, keep_at: float | None = None) -> tuple[I64, I64]:
    """Rows sharing at least one LSH band, as (member, representative) pairs.

    Buckets of up to `SMALL_BUCKET` rows give every pair; bigger buckets link each member to
    its neighbour and to the bucket's first row, so the pairs stay linear in the number of
    rows even for huge buckets; clusters come from `clusters()`.

    `keep_at`: only the pairs whose estimated Jaccard is at least this, checked band by band
    as they are found, so memory holds the verified pairs, not every candidate (at 200k
    simulated rows 2.7M candidates, 129k of them verified). The result is the same set, in
    the same order, as filtering every candidate afterwards.
    """
    n, k = sig.shape
    r = k // bands
    keys = np.zeros(0, dtype=np.int64)  # distinct pairs so far, min(i, j) * n + max(i, j)
    for bnd in range(bands):
        ii: list[I64] = []
        jj: list[I64] = []
        cols = sig[:, bnd * r : (bnd + 1) * r].astype(np.uint64)
        h = np.full(n, np.uint64(bnd), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for c in range(r):
                h = _splitmix(h ^ cols[:, c])
        order = np.argsort(h, kind="stable")
        hs = h[order]
        first = np.ones(n, dtype=bool)
        first[1:] = hs[1:] != hs[:-1]
        starts = np.flatnonzero(first)
        sizes = np.diff(np.r_[starts, n])
        # small buckets: every pair; big buckets: every member to its neighbours and the first
        small = sizes <= SMALL_BUCKET
        for gap in range(1, SMALL_BUCKET):
            st = starts[small & (sizes > gap)]
            for a in range(0, SMALL_BUCKET - gap):
                sel = st[sizes[np.searchsorted(starts, st)] > a + gap]
                if sel.size == 0:
                    break
                ii.append(order[sel + a].astype(np.int64))
                jj.append(order[sel + a + gap].astype(np.int64))
        big = np.flatnonzero(~small)
        for g in big.tolist():
            members = order[starts[g] : starts[g] + sizes[g]].astype(np.int64)
            ii.append(members[1:])
            jj.append(members[:-1])
            ii.append(members[1:])
            jj.append(np.full(members.size - 1, members[0], dtype=np.int64))
        if ii:  # merged band by band: memory holds the distinct pairs, not every band's
            i, j = np.concatenate(ii), np.concatenate(jj)
            new = np.asarray(distinct(np.minimum(i, j) * n + np.maximum(i, j)))
            del i, j, ii, jj
            if keep_at is not None and new.size:
                if keys.size:  # pairs verified in an earlier band are not checked again
                    at = np.minimum(np.searchsorted(keys, new), keys.size - 1)
                    new = new[keys[at] != new]
                new = new[similarity(sig, new // n, new % n) >= keep_at]
            keys = np.asarray(distinct(np.concatenate([keys, new])))
    return (keys // n).astype(np.int64), (keys % n).astype(np.int64)


def clusters(n: int, i: I64, j: I64) -> I64:
    """Connected-component label per row for the edges (i, j)."""
    if i.size == 0:
        return np.arange(n, dtype=np.int64)
    g = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return np.asarray(labels, dtype=np.int64)


def near_duplicate_clusters(
    sig: U32, threshold: float, bands: int | None = None
) -> tuple[I64, I64, I64, NDArray[np.float64]]:
    """Cluster rows whose estimated Jaccard ≥ threshold. Returns (labels, i, j, sim) for
    the verified edges."""
    n, k = sig.shape
    if bands is None:
        bands = k // 5 if threshold >= 0.7 else k // 3
    i, j = candidate_pairs(sig, bands, keep_at=threshold)
    sim = similarity(sig, i, j) if i.size else np.zeros(0)
    keep = sim >= threshold
    i, j, sim = i[keep], j[keep], sim[keep]
    return clusters(n, i, j), i, j, sim
