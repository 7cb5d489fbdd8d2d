"""Fast construction of canonical Arrow tables from column lists (no per-row dicts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.schema import MESSAGE, SPAN, Kind, prompt_id, schema_for, with_metadata


def messages(texts: Sequence[str | None], role: str) -> pa.Array:
    """One-message lists [{role, content}] (null where the text is None)."""
    n = len(texts)
    roles = pa.array([role] * n, pa.string())
    content = pa.array(list(texts), pa.string())
    structs = pa.StructArray.from_arrays([roles, content], fields=list(MESSAGE))
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    if any(t is None for t in texts):
        mask = pa.array([t is None for t in texts])
        return pa.ListArray.from_arrays(offsets, structs, mask=mask)
    return pa.ListArray.from_arrays(offsets, structs)


def message_lists(groups: Sequence[Sequence[str]], role: str) -> pa.Array:
    """list<list<message>>: one list of one-message responses per row (rankings)."""
    flat = [t for g in groups for t in g]
    inner = messages(flat, role)
    offsets = np.zeros(len(groups) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(g) for g in groups])
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def prompt_ids(texts: Sequence[str]) -> pa.Array:
    cache: dict[str, str] = {}
    out = []
    for t in texts:
        pid = cache.get(t)
        if pid is None:
            pid = cache[t] = prompt_id(t)
        out.append(pid)
    return pa.array(out, pa.string())


def meta_map(columns: dict[str, Sequence[str]], n: int) -> pa.Array:
    """map<string,string> with the same keys on every row."""
    keys = list(columns)
    k = len(keys)
    key_arr = pa.array(keys * n, pa.string())
    vals: list[str] = [""] * (n * k)
    for j, name in enumerate(keys):
        vals[j::k] = list(columns[name])
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, key_arr, pa.array(vals, pa.string()))


def spans_array(spans: Sequence[Sequence[tuple[int, int, str]]]) -> pa.Array:
    flat = [s for row in spans for s in row]
    starts = pa.array([s[0] for s in flat], pa.int32())
    ends = pa.array([s[1] for s in flat], pa.int32())
    labels = pa.array([s[2] for s in flat], pa.string())
    inner = pa.StructArray.from_arrays([starts, ends, labels], fields=list(SPAN))
    offsets = np.zeros(len(spans) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(r) for r in spans])
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def fmt(values: NDArray[np.float64], digits: int = 4) -> list[str]:
    return [f"{v:.{digits}f}" for v in values.tolist()]


def table(kind: Kind, columns: dict[str, Any], n: int) -> pa.Table:
    """A canonical table: given columns (Arrow arrays or Python lists), the rest null."""
    schema = schema_for(kind)
    arrays = []
    for f in schema:
        v = columns.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, pa.Array | pa.ChunkedArray):
            arrays.append(v if v.type == f.type else v.cast(f.type))
        else:
            arrays.append(pa.array(v, f.type))
    return with_metadata(pa.Table.from_arrays(arrays, schema=schema), kind)


def nan_to_null(values: NDArray[np.float64]) -> pa.Array:
    return pa.array(values, pa.float64(), mask=np.isnan(values))
