"""Leak-free splits: grouped (prompt, source or annotator; optionally near-duplicate prompt
text via MinHash/LSH), stratified by source, deterministic for a seed."""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.schema import messages_text, normalize_text

SplitBy = Literal["prompt", "source", "annotator"]
SPLIT_BY: tuple[str, ...] = ("prompt", "source", "annotator")
_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


@dataclass(frozen=True)
class SplitResult:
    """Tables per split name (train, test, and val when asked) and the split report."""

    tables: dict[str, pa.Table]
    labels: NDArray[np.str_]
    report: dict[str, Any]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p[root] != root:
            root = int(p[root])
        while p[x] != root:
            p[x], x = root, int(p[x])
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def shingles(text: str, k: int = 5) -> set[str]:
    """Character k-grams of the normalized text (the whole text when shorter than k)."""
    t = normalize_text(text)
    if len(t) <= k:
        return {t}
    return {t[i : i + k] for i in range(len(t) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def minhash_signatures(
    sets: list[set[str]], num_perm: int = 128, seed: int = 1
) -> NDArray[np.uint64]:
    """MinHash signatures (n_sets, num_perm): universal hashing of crc32 shingle hashes,
    vectorized over all shingles in chunks. An empty set gets the all-max signature."""
    gen = np.random.default_rng(seed)
    a = gen.integers(1, int(_MERSENNE), size=num_perm, dtype=np.uint64)
    b = gen.integers(0, int(_MERSENNE), size=num_perm, dtype=np.uint64)
    n = len(sets)
    lens = np.fromiter((len(x) for x in sets), dtype=np.int64, count=n)
    total = int(lens.sum())
    flat = np.fromiter(
        (zlib.crc32(x.encode("utf-8")) for st in sets for x in st), dtype=np.uint64, count=total
    )
    owner = np.repeat(np.arange(n), lens)
    out = np.full((n, num_perm), _MAX_HASH, dtype=np.uint64)
    chunk = max(1, 2_000_000 // num_perm)
    for c0 in range(0, total, chunk):
        c1 = min(total, c0 + chunk)
        with np.errstate(over="ignore"):
            v = ((flat[c0:c1, None] * a[None, :] + b[None, :]) % _MERSENNE) & _MAX_HASH
        seg = owner[c0:c1]
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        ids = seg[starts]
        out[ids] = np.minimum(out[ids], np.minimum.reduceat(v, starts, axis=0))
    return out


@lru_cache(maxsize=32)
def _lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimizing 0.1·false positives + 0.9·false negatives (recall first: every
    candidate is verified with the exact Jaccard afterwards)."""
    from scipy.integrate import quad

    best, best_err = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        fp, _ = quad(lambda s, r=rows, b=bands: 1 - (1 - s**r) ** b, 0.0, threshold)
        fn, _ = quad(lambda s, r=rows, b=bands: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)
        err = 0.1 * fp + 0.9 * fn
        if err < best_err:
            best, best_err = (bands, rows), err
    return best


def _buckets(sig: NDArray[np.uint64], threshold: float) -> list[NDArray[np.int64]]:
    """LSH: for each band, the groups (size > 1) of rows whose band of the signature is equal."""
    n, num_perm = sig.shape
    bands, rows = _lsh_params(threshold, num_perm)
    out: list[NDArray[np.int64]] = []
    for bnd in range(bands):
        block = np.ascontiguousarray(sig[:, bnd * rows : (bnd + 1) * rows])
        keys = block.view(np.dtype((np.void, rows * 8))).ravel()
        _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
        if counts.max(initial=0) < 2:
            continue
        order = np.argsort(inv, kind="stable")
        bounds = np.cumsum(counts)[:-1]
        for members in np.split(order, bounds):
            if members.size > 1:
                out.append(members.astype(np.int64))
    return out


def near_duplicate_pairs(
    texts: list[str], threshold: float = 0.7, num_perm: int = 128, seed: int = 1
) -> list[tuple[int, int, float]]:
    """All pairs (i, j, jaccard) of texts whose character-5-gram Jaccard is >= threshold that
    share an LSH bucket (MinHash + banding tuned for recall); each candidate is verified with
    the exact Jaccard, so there are no false positives. Quadratic in bucket size: for large
    inputs use `near_duplicate_groups`."""
    sets = [shingles(t) for t in texts]
    cand: set[tuple[int, int]] = set()
    for members in _buckets(minhash_signatures(sets, num_perm, seed), threshold):
        m = members.tolist()
        for x in range(len(m)):
            for y in range(x + 1, len(m)):
                cand.add((m[x], m[y]))
    out = []
    for i, j in sorted(cand):
        s = jaccard(sets[i], sets[j])
        if s >= threshold:
            out.append((i, j, s))
    return out


def near_duplicate_groups(
    texts: list[str], threshold: float = 0.7, num_perm: int = 128, seed: int = 1
) -> tuple[NDArray[np.int64], int]:
    """Connected components of "near duplicate" (verified Jaccard >= threshold between two
    texts that share an LSH bucket). Returns (component id per text, merges made).

    Within a bucket, pairs whose MinHash estimate is below threshold − 0.1 (over two standard
    errors at 128 permutations; LSH banding itself already misses some pairs right at the
    threshold) are skipped without computing the exact Jaccard, and pairs already in one
    component are not checked again."""
    sets = [shingles(t) for t in texts]
    sig = minhash_signatures(sets, num_perm, seed)
    uf = _UnionFind(len(texts))
    merges = 0
    floor = threshold - 0.1
    seen: set[bytes] = set()
    for members in _buckets(sig, threshold):
        key = members.tobytes()
        if key in seen:  # the same bucket in another band
            continue
        seen.add(key)
        sub = sig[members]
        for r0 in range(0, members.size, 256):
            block = sub[r0 : r0 + 256]
            est = (block[:, None, :] == sub[None, :, :]).mean(axis=2)
            rows, cols = np.nonzero(est >= floor)
            rows = rows + r0
            keep = cols > rows
            for i, j in zip(
                members[rows[keep]].tolist(), members[cols[keep]].tolist(), strict=True
            ):
                if uf.find(i) == uf.find(j):
                    continue
                if jaccard(sets[i], sets[j]) >= threshold:
                    uf.union(i, j)
                    merges += 1
    return np.array([uf.find(i) for i in range(len(texts))], dtype=np.int64), merges


def split(
    table: pa.Table,
    by: SplitBy = "prompt",
    test: float = 0.1,
    val: float = 0.0,
    seed: int = 0,
    near_dup: bool = False,
    threshold: float = 0.7,
    num_perm: int = 128,
) -> SplitResult:
    """Split rows into train/test(/val) so that no group appears in two splits.

    Groups: `prompt` -> prompt_id, `source` -> source, `annotator` -> annotator (null = one
    group). With `near_dup`, groups that contain prompts whose text is a near duplicate
    (character-5-gram Jaccard >= `threshold`, MinHash/LSH) are merged too. Groups are
    stratified by their main source (each source is split in the same proportions) and shuffled
    with `seed`: the same input and seed give the same split.
    """
    if by not in SPLIT_BY:
        raise ValueError(f"by must be one of {SPLIT_BY}, got {by!r}")
    if not (0 <= test < 1 and 0 <= val < 1 and test + val < 1):
        raise ValueError("test and val are fractions with test + val < 1")
    n = table.num_rows
    column = {"prompt": "prompt_id", "source": "source", "annotator": "annotator"}[by]
    if column not in table.column_names:
        raise ValueError(f"--by {by} needs a {column!r} column")
    keys = [str(k) if k is not None else "\0null" for k in table.column(column).to_pylist()]
    sources = (
        [s if s is not None else "" for s in table.column("source").to_pylist()]
        if "source" in table.column_names
        else [""] * n
    )
    uniq: dict[str, int] = {}
    row_group = np.array([uniq.setdefault(k, len(uniq)) for k in keys], dtype=np.int64)
    uf = _UnionFind(len(uniq))
    merges = 0
    if near_dup:
        prompts = table.column("prompt").to_pylist()
        pids = table.column("prompt_id").to_pylist()
        first: dict[str, int] = {}
        for i, p in enumerate(pids):
            first.setdefault(p, i)
        reps = list(first.values())
        texts = [messages_text(prompts[i]) for i in reps]
        comp, merges = near_duplicate_groups(texts, threshold, num_perm, seed=1)
        pid_rows: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(pids):
            pid_rows[p].append(i)
        rep_groups = [sorted({int(row_group[r]) for r in pid_rows[pids[i]]}) for i in reps]
        for gs in rep_groups:
            for g in gs[1:]:
                uf.union(gs[0], g)
        first_of_comp: dict[int, int] = {}
        for pos, c in enumerate(comp.tolist()):
            other = first_of_comp.setdefault(c, pos)
            if other != pos:
                uf.union(rep_groups[other][0], rep_groups[pos][0])
    group = np.array([uf.find(int(g)) for g in row_group], dtype=np.int64)
    # stratum of a group: its most common source (by == source: one stratum)
    src_count: dict[int, Counter[str]] = defaultdict(Counter)
    for g, s in zip(group.tolist(), sources, strict=True):
        src_count[g][s] += 1
    gkey: dict[int, str] = {}
    for k, g in uniq.items():
        r = uf.find(g)
        gkey[r] = min(gkey.get(r, k), k)
    strata: dict[str, list[int]] = defaultdict(list)
    for g, cnt in src_count.items():
        top = max(cnt.values())
        stratum = "" if by == "source" else min(s for s, c in cnt.items() if c == top)
        strata[stratum].append(g)
    size = Counter(group.tolist())
    rng = np.random.default_rng(seed)
    assign: dict[int, str] = {}
    for stratum in sorted(strata):
        gs = sorted(strata[stratum], key=lambda g: gkey[g])
        order = rng.permutation(len(gs))
        total = sum(size[g] for g in gs)
        done = 0
        for idx in order.tolist():
            g = gs[idx]
            if done < test * total:
                assign[g] = "test"
            elif done < (test + val) * total:
                assign[g] = "val"
            else:
                assign[g] = "train"
            done += size[g]
    labels = np.array([assign[g] for g in group.tolist()], dtype=np.str_)
    names = ["train", "test"] + (["val"] if val > 0 else [])
    tables = {s: table.filter(pa.array(labels == s)) for s in names}
    report = _split_report(table, labels, names, group, by, near_dup, threshold, merges, seed)
    return SplitResult(tables, labels, report)


def _split_report(
    table: pa.Table,
    labels: NDArray[np.str_],
    names: list[str],
    group: NDArray[np.int64],
    by: str,
    near_dup: bool,
    threshold: float,
    merges: int,
    seed: int,
) -> dict[str, Any]:
    per: dict[str, Any] = {}
    pid = table.column("prompt_id").to_pylist() if "prompt_id" in table.column_names else None
    src = table.column("source").to_pylist() if "source" in table.column_names else None
    pid_sets: dict[str, set[str]] = {}
    for s in names:
        mask = labels == s
        entry: dict[str, Any] = {
            "rows": int(mask.sum()),
            "groups": len(set(group[mask].tolist())),
        }
        if pid is not None:
            pid_sets[s] = {p for p, m in zip(pid, mask.tolist(), strict=True) if m}
            entry["prompts"] = len(pid_sets[s])
        if src is not None:
            entry["sources"] = dict(
                sorted(
                    Counter(x for x, m in zip(src, mask.tolist(), strict=True) if m).items(),
                    key=lambda kv: str(kv[0]),
                )
            )
        per[s] = entry
    shared = 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared += len(pid_sets.get(a, set()) & pid_sets.get(b, set()))
    return {
        "by": by,
        "seed": seed,
        "rows_in": table.num_rows,
        "groups": len(set(group.tolist())),
        "near_dup": near_dup,
        "threshold": threshold if near_dup else None,
        "near_duplicate_merges": merges,
        "shared_prompt_ids": shared,
        "splits": per,
    }
