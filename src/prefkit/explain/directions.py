"""Learned directions: a sparse dictionary over the MiniLM embedding differences of the two
responses, what each direction does to preference, and what it looks like.

1. Embeddings: the reward stage's cached MiniLM encoder (`prefkit.reward.embed`) on the
   reward model's input text (response, then the prompt: `reward.models.embed_input`), so a
   cache filled by `prefkit rm` is reused. d = e(a) - e(b), one 384-vector per vote.
2. Dictionary (`method`):
   - `sae` (default): a top-k sparse autoencoder in torch without biases and with a
     sign-keeping top-k activation (z = the k entries of W_enc d largest in absolute value),
     so swapping a and b negates every activation, as it must; decoder columns kept at unit
     norm; Adam on the reconstruction error;
   - `dictionary`: scikit-learn's MiniBatchDictionaryLearning with OMP codes of k atoms.
   benchmarks/bench_explain.py compares the two (held-out reconstruction, preference log-loss,
   time); see RESULTS.md.
3. Effects: the activations (standardized) plus the length feature enter the same
   Davidson/BT model as the features (`explain.model`); cluster-bootstrap intervals.
4. Examples: the votes with the largest |activation|, oriented so that the "high" response is
   the one with more of the direction; distinctive words of the high side against everything
   else by class-based TF-IDF (c-TF-IDF, as in BERTopic: tf of the word in the class times
   log(1 + mean class size / its total frequency)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
I64 = NDArray[np.int64]

METHODS: tuple[str, ...] = ("sae", "dictionary")


@dataclass(frozen=True)
class Dictionary:
    """atoms: (K, dim) unit-norm directions in embedding-difference space; codes: (n, K)."""

    method: str
    atoms: F64
    codes: F64
    explained: float  # share of the difference vectors' variance the codes reconstruct
    k: int  # nonzero codes per vote
    seconds: float
    encoder: F64 | None = None  # the SAE's encoder (None for the dictionary: OMP codes)

    def encode(self, d: F64) -> F64:
        """Codes of new difference vectors by the method's own rule."""
        if self.encoder is not None:
            return sae_codes(d, self.encoder, self.k)
        from sklearn.linear_model import orthogonal_mp

        return np.asarray(
            np.atleast_2d(orthogonal_mp(self.atoms.T, d.T, n_nonzero_coefs=self.k)).T,
            dtype=np.float64,
        )


def embed_pairs(
    prompts: pa.Array, a: pa.Array, b: pa.Array, cache_dir: str | Path | None, batch_size: int = 64
) -> tuple[F32, F32, Any]:
    """MiniLM embeddings of both responses (reward's input text) and the embedder's
    `EmbedStats` (texts truncated by the encoder's token limit, cache hits)."""
    import warnings

    from prefkit.reward.embed import embed_with_stats
    from prefkit.reward.models import embed_input

    p = prompts.to_pylist()
    ta = [embed_input(q, r) for q, r in zip(p, a.to_pylist(), strict=True)]
    tb = [embed_input(q, r) for q, r in zip(p, b.to_pylist(), strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation is counted and reported by the caller
        e, stats = embed_with_stats(ta + tb, batch_size=batch_size, cache_dir=cache_dir)
    n = len(ta)
    return e[:n], e[n:], stats


def _topk_signed(z: Any, k: int) -> Any:
    """Keep the k entries of each row largest in absolute value (sign kept), zero the rest."""
    import torch

    idx = z.abs().topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter_(1, idx, 1.0)
    return z * mask


def fit_sae(
    d: F64,
    n_atoms: int,
    k: int,
    seed: int = 0,
    epochs: int = 30,
    batch: int = 512,
    lr: float = 3e-3,
) -> tuple[F64, F64]:
    """Top-k sparse autoencoder without biases (see module doc). Returns (atoms (K, dim),
    encoder (K, dim)). The encoder starts as the decoder's transpose, initialised from
    random votes' difference vectors."""
    import torch

    threads = torch.get_num_threads()
    # small matrices: one thread is 30x faster than two contending ones on a busy machine
    torch.set_num_threads(1)
    try:
        return _train_sae(torch, d, n_atoms, k, seed, epochs, batch, lr)
    finally:
        torch.set_num_threads(threads)


def _train_sae(
    torch: Any, d: F64, n_atoms: int, k: int, seed: int, epochs: int, batch: int, lr: float
) -> tuple[F64, F64]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32))
    n, dim = x.shape
    scale = float(x.norm(dim=1).mean()) or 1.0
    x = x / scale
    init = x[torch.from_numpy(rng.choice(n, size=n_atoms, replace=n < n_atoms))].clone()
    init = init / init.norm(dim=1, keepdim=True).clamp_min(1e-8)
    dec = torch.nn.Parameter(init.clone())  # (K, dim)
    enc = torch.nn.Parameter(init.clone())
    opt = torch.optim.Adam([dec, enc], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch):
                xb = x[perm[s : s + batch]]
                z = _topk_signed(xb @ enc.T, k)
                loss = ((z @ dec - xb) ** 2).sum(dim=1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    dec.div_(dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
    return dec.detach().double().numpy(), enc.detach().double().numpy()


def sae_codes(d: F64, enc: F64, k: int) -> F64:
    import torch

    z = _topk_signed(torch.from_numpy(np.ascontiguousarray(d)) @ torch.from_numpy(enc).T, k)
    return np.asarray(z.numpy(), dtype=np.float64)


def learn(d: F64, n_atoms: int = 32, k: int = 4, method: str = "sae", seed: int = 0) -> Dictionary:
    """A sparse dictionary of `n_atoms` directions over the rows of `d` (see module doc)."""
    import time

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    t0 = time.perf_counter()
    n_atoms = max(1, min(n_atoms, d.shape[0]))
    k = max(1, min(k, n_atoms))
    enc: F64 | None = None
    if method == "sae":
        atoms, enc = fit_sae(d, n_atoms, k, seed)
        codes = sae_codes(d, enc, k)
    else:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        dl = MiniBatchDictionaryLearning(
            n_components=n_atoms, transform_algorithm="omp", transform_n_nonzero_coefs=k,
            random_state=seed, batch_size=512, max_iter=30,
        )  # fmt: skip
        codes = np.asarray(dl.fit_transform(d), dtype=np.float64)
        atoms = np.asarray(dl.components_, dtype=np.float64)
        norms = np.linalg.norm(atoms, axis=1)
        norms = np.where(norms > 0, norms, 1.0)
        atoms = atoms / norms[:, None]
        codes = codes * norms[None, :]
    recon = codes @ atoms
    resid = float(((d - recon) ** 2).sum())
    total = float(((d - d.mean(axis=0)) ** 2).sum()) or 1.0
    return Dictionary(method, atoms, codes, 1.0 - resid / total, k, time.perf_counter() - t0, enc)


def ctfidf(docs: list[str], top: int = 8) -> list[list[tuple[str, float]]]:
    """The `top` most distinctive words (and 2-grams) of each class document by class-based
    TF-IDF (BERTopic's c-TF-IDF); English stop words removed."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(d.strip() for d in docs):
        return [[] for _ in docs]
    cv = CountVectorizer(
        stop_words="english",
        ngram_range=(1, 2),
        min_df=2,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z']+\b",
    )
    try:
        tf = cv.fit_transform(docs).astype(np.float64)
    except ValueError:  # empty vocabulary
        return [[] for _ in docs]
    vocab = np.asarray(cv.get_feature_names_out())
    words_per_class = np.asarray(tf.sum(axis=1)).ravel()
    avg = float(words_per_class.mean()) or 1.0
    freq = np.asarray(tf.sum(axis=0)).ravel()
    idf = np.log1p(avg / np.maximum(freq, 1.0))
    rows = np.divide(
        1.0, words_per_class, out=np.zeros_like(words_per_class), where=words_per_class > 0
    )
    score = tf.multiply(rows[:, None]).multiply(idf[None, :]).tocsr()
    out = []
    for c in range(score.shape[0]):
        r = score.getrow(c)
        order = np.argsort(-r.data)[:top]
        out.append([(str(vocab[r.indices[i]]), float(r.data[i])) for i in order])
    return out


@dataclass(frozen=True)
class DirectionReport:
    rows: list[dict[str, Any]]  # one per direction
    examples: dict[int, list[dict[str, Any]]]
    summary: dict[str, Any]
    codes: F64  # (n, K) activations (used by the annotator basis)


def top_votes(codes: F64, k: int, m: int) -> I64:
    """Rows with the largest |activation| of direction k (at most m, nonzero only)."""
    a = np.abs(codes[:, k])
    nz = np.flatnonzero(a > 0)
    return np.asarray(nz[np.argsort(-a[nz], kind="stable")][:m], dtype=np.int64)


def describe(
    codes: F64,
    prompts: list[str],
    a: list[str],
    b: list[str],
    outcome: list[str],
    n_examples: int = 3,
    n_class: int = 100,
) -> tuple[
    dict[int, list[dict[str, Any]]], list[list[tuple[str, float]]], list[list[tuple[str, float]]]
]:
    """Top-activating votes per direction (oriented: `high` has more of it) and the
    distinctive words of the high and the low side (c-TF-IDF over all directions)."""
    n_dir = codes.shape[1]
    examples: dict[int, list[dict[str, Any]]] = {}
    high_docs: list[str] = []
    low_docs: list[str] = []
    for k in range(n_dir):
        rows = top_votes(codes, k, n_class)
        hi_txt, lo_txt = [], []
        ex: list[dict[str, Any]] = []
        for i in rows.tolist():
            pos = codes[i, k] > 0
            hi, lo = (a[i], b[i]) if pos else (b[i], a[i])
            hi_txt.append(hi)
            lo_txt.append(lo)
            if len(ex) < n_examples:
                won = outcome[i]
                high_won = (won == "a") == pos if won in ("a", "b") else None
                ex.append(
                    {
                        "row": int(i),
                        "activation": float(abs(codes[i, k])),
                        "prompt": prompts[i],
                        "high": hi,
                        "low": lo,
                        "outcome": won,
                        "high_won": high_won,
                    }
                )
        examples[k] = ex
        high_docs.append("\n".join(hi_txt))
        low_docs.append("\n".join(lo_txt))
    words = ctfidf(high_docs + low_docs)
    return examples, words[:n_dir], words[n_dir:]
