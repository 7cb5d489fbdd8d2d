"""The audit's row-wise work as per-batch functions (`prefkit.engine.map_batches`).

`row_stats` gives, for a batch of canonical comparisons, each row's text statistics (lengths),
degenerate-text flags (empty responses, encoding debris) and style flags (lists, headers,
bold, refusals) — everything the checks read from a row's own text. `text_signatures` gives
the MinHash signature of each text of a batch. A row's output depends on that row only, so
the local engine (one batch after another) and the Ray engine (batches on the cluster's
workers) give the same arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.audit.frame import TEXT_COLUMNS, joined_text

STYLE = ("list", "header", "bold", "refusal")
DEBRIS_WHERE = ("", "prompt", "response_a", "response_b")
SIG_K = 64


def _flag(text: pa.Array, pattern: str) -> NDArray[np.bool_]:
    return np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False), dtype=bool)


def row_stats(batch: pa.Table) -> pa.Table:
    """Per row: `len_prompt`, `len_a`, `len_b` (characters of the joined messages),
    `empty_a`/`empty_b` (only whitespace), `debris` (0 none, else 1 + the first of prompt,
    response_a, response_b holding mojibake or control characters) and `<style>_a`/`_b`
    for list, header, bold, refusal."""
    from prefkit.audit.degenerate import MOJIBAKE
    from prefkit.audit.features import BOLD, HEADER, LIST, REFUSAL

    texts = {c: joined_text(batch.column(c)) for c in TEXT_COLUMNS}
    p, a, b = texts["prompt"], texts["response_a"], texts["response_b"]
    out: dict[str, pa.Array] = {
        "len_prompt": pc.utf8_length(p).cast(pa.int64()),
        "len_a": pc.utf8_length(a).cast(pa.int64()),
        "len_b": pc.utf8_length(b).cast(pa.int64()),
        "empty_a": pc.fill_null(pc.equal(pc.utf8_trim_whitespace(a), ""), False),
        "empty_b": pc.fill_null(pc.equal(pc.utf8_trim_whitespace(b), ""), False),
    }
    where = np.zeros(batch.num_rows, dtype=np.int8)
    for k, t in enumerate((p, a, b), start=1):
        d = _flag(t, MOJIBAKE)
        where[d & (where == 0)] = k
    out["debris"] = pa.array(where)
    for name, pat in zip(STYLE, (LIST, HEADER, BOLD, REFUSAL), strict=True):
        out[f"{name}_a"] = pa.array(_flag(a, pat))
        out[f"{name}_b"] = pa.array(_flag(b, pat))
    return pa.table(out)


def text_signatures(batch: pa.Table) -> pa.Table:
    """MinHash signature (`SIG_K` uint32) of each text in column `text` (normalized); with a
    column `salt`, a text without shingles gets the signature of that position
    (`minhash.signatures`)."""
    from prefkit.audit.minhash import signatures

    salt = (
        np.asarray(batch.column("salt").combine_chunks(), dtype=np.int64)
        if "salt" in batch.column_names
        else None
    )
    sig = signatures(batch.column("text").combine_chunks(), k=SIG_K, salt=salt)
    flat = pa.array(sig.reshape(-1), pa.uint32())
    return pa.table({"sig": pa.FixedSizeListArray.from_arrays(flat, SIG_K)})


def signature_matrix(t: pa.Table) -> NDArray[np.uint32]:
    """`text_signatures` output back to an (n, SIG_K) array."""
    col = t.column("sig").combine_chunks() if t.num_rows else None
    if col is None:
        return np.zeros((0, SIG_K), dtype=np.uint32)
    return np.asarray(col.flatten(), dtype=np.uint32).reshape(-1, SIG_K)


SIG_BATCH = 1 << 14  # texts per `text_signatures` batch (`engine.BATCH_ROWS`)


def text_set_signatures(
    ts: Any, engine: str = "local", chunk: int = 1 << 18, batch: int | None = SIG_BATCH
) -> NDArray[np.uint32]:
    """The (n, `SIG_K`) signatures of every text of a `frame.TextSet`, by code, computed a
    chunk of texts at a time (`engine.map_table`): a text without shingles gets the signature
    of its position in batches of `batch` texts in code order (`None`: one batch), as when
    the texts are signed in code order in one table."""
    from prefkit.engine import map_table

    out = np.empty((len(ts), SIG_K), dtype=np.uint32)
    for codes, vals in ts.chunks(chunk):
        salt = codes % batch if batch else codes
        t = pa.table({"text": vals, "salt": pa.array(salt, pa.int64())})
        out[codes] = signature_matrix(map_table(t, text_signatures, engine))
    return out


def stats_arrays(t: pa.Table) -> dict[str, NDArray[np.generic]]:
    """`row_stats` output as numpy arrays by column."""
    return {
        name: np.asarray(col.to_numpy(zero_copy_only=False))
        for name, col in zip(t.column_names, t.columns, strict=True)
    }
