"""Diversity: a nearest-neighbour graph over (normalised) prompt embeddings, and greedy
facility location or k-center over it, combined with a per-row score.

Facility location (Lin & Bilmes; the "Diversity Measurement and Subset Selection" and
Skywork-Reward data-selection recipes use the same idea): each row covers itself and its `k`
nearest neighbours with their cosine similarity; the value of a subset S is
``sum_i score_i + w * sum_j max_{s in S} sim(s, j) / (k + 1)``, a monotone submodular function
maximised by lazy greedy (a (1 - 1/e) approximation). Neighbours come from exact inner products
(numpy) up to `EXACT_MAX` rows and from a faiss inverted-file index beyond.

Greedy k-center (Sener & Savarese's core-set) picks, one at a time, the row farthest from the
rows already chosen (ties broken by score); it needs full distances, so it is for candidate
pools of up to a few tens of thousands of rows.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

EXACT_MAX = 4096  # rows up to which neighbours are found by exact numpy inner products
NEIGHBOURS = 10


@dataclass(frozen=True)
class Graph:
    """`idx[i]`: the `k` nearest other rows of row i (−1 padding), `sim[i]` their cosine
    similarity (clipped to 0..1)."""

    idx: I64
    sim: F32
    method: str


def normalise(x: NDArray[np.floating]) -> F32:
    v = np.ascontiguousarray(x, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.maximum(n, 1e-12), dtype=np.float32)


def knn_graph(emb: NDArray[np.floating], k: int = NEIGHBOURS, seed: int = 0) -> Graph:
    """The `k` nearest neighbours of every row by cosine similarity (see module doc)."""
    x = normalise(emb)
    n = x.shape[0]
    k = max(0, min(k, n - 1))
    if k == 0:
        return Graph(np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32), "none")
    if n <= EXACT_MAX:
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k].astype(np.int64)
        sim = np.take_along_axis(s, idx, axis=1)
        return Graph(idx, np.clip(sim, 0.0, 1.0).astype(np.float32), "exact")
    import faiss

    d = x.shape[1]
    nlist = int(min(4096, max(16, 4 * np.sqrt(n))))
    quant = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    train = x[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
    index.cp.seed = int(seed)
    index.train(train)
    index.add(x)
    index.nprobe = 8
    sim, idx = index.search(x, k + 1)
    idx = idx.astype(np.int64)
    own = idx == np.arange(n)[:, None]
    # drop each row itself (or the last neighbour when the row was not among its own hits)
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    idx = idx[keep].reshape(n, k)
    sim = sim[keep].reshape(n, k)
    sim = np.where(idx >= 0, sim, 0.0)
    return Graph(idx, np.clip(sim, 0.0, 1.0).astype(np.float32), f"faiss IVF ({nlist} lists)")


def facility_location(
    g: Graph,
    score: F64,
    budget: int,
    weight: float = 1.0,
    quota: I64 | None = None,
    group: I64 | None = None,
) -> tuple[I64, F64]:
    """Lazy-greedy maximiser of ``sum score + weight * coverage / (k + 1)`` (module doc).

    `group`/`quota`: row i belongs to group[i]; at most quota[g] rows of each group are chosen
    while any group still has room. Returns (chosen rows in order, marginal gain of each)."""
    n = score.size
    k = g.idx.shape[1]
    cover = np.zeros(n, dtype=np.float32)
    scale = weight / (k + 1)

    def gain(i: int) -> float:
        nb = g.idx[i]
        ok = nb >= 0
        cov = float(max(0.0, 1.0 - cover[i]))
        cov += float(np.maximum(g.sim[i][ok] - cover[nb[ok]], 0.0).sum())
        return float(score[i]) + float(scale * cov)

    heap = [(-(float(score[i]) + weight), i) for i in range(n)]
    heapq.heapify(heap)
    chosen: list[int] = []
    gains: list[float] = []
    room = None if quota is None or group is None else quota.astype(np.int64).copy()
    deferred: list[tuple[float, int]] = []
    while len(chosen) < budget:
        if not heap:
            if not deferred:
                break
            # every group with room is exhausted: fill from the full groups, without quotas
            heap, deferred, room = deferred, [], None
            heapq.heapify(heap)
        negb, i = heapq.heappop(heap)
        if room is not None and group is not None and room[group[i]] <= 0:
            deferred.append((negb, i))
            continue
        gi = gain(i)
        if heap and gi < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-gi, i))
            continue
        chosen.append(i)
        gains.append(gi)
        cover[i] = 1.0
        nb = g.idx[i]
        ok = nb >= 0
        cover[nb[ok]] = np.maximum(cover[nb[ok]], g.sim[i][ok])
        if room is not None and group is not None:
            room[group[i]] -= 1
    return np.array(chosen, dtype=np.int64), np.array(gains, dtype=np.float64)


def k_center(emb: NDArray[np.floating], score: F64, budget: int) -> tuple[I64, F64]:
    """Greedy k-center over cosine distance: start from the best-scoring row, then repeatedly
    the row farthest from every chosen row (distance + score / 1e6 breaks ties). Returns
    (chosen rows, the distance each had to the chosen set when picked)."""
    x = normalise(emb)
    n = x.shape[0]
    budget = min(budget, n)
    if budget <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    first = int(np.argmax(score))
    chosen = [first]
    dist = np.maximum(1.0 - x @ x[first], 0.0).astype(np.float64)
    dist[first] = -np.inf
    radii = [float("inf")]
    tie = score / (1e6 * (np.abs(score).max() + 1.0))
    for _ in range(budget - 1):
        i = int(np.argmax(dist + tie))
        radii.append(float(dist[i]))
        chosen.append(i)
        dist = np.minimum(dist, np.maximum(1.0 - x @ x[i], 0.0))
        dist[chosen] = -np.inf
    return np.array(chosen, dtype=np.int64), np.array(radii)
