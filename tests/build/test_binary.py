"""Thumbs up/down: KTO unpaired output, pairs where a prompt has both, the KTO ratio."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from prefkit.build import pairs_from_binary, unpaired_from_binary, unpaired_from_pairs
from prefkit.build.result import text_key
from prefkit.schema import Kind, from_rows


def _thumbs(seed: int = 0) -> tuple[pa.Table, int]:
    rng = np.random.default_rng(seed)
    rows = []
    implied = 0
    for p in range(40):
        n_up, n_down = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        for k in range(n_up):
            rows.append({"prompt": f"p{p}", "response": f"good {p}.{k}", "label": True})
        for k in range(n_down):
            rows.append({"prompt": f"p{p}", "response": f"bad {p}.{k}", "label": False})
        implied += n_up * n_down if n_up and n_down else (1 if n_up + n_down else 0)
    # the same text liked and disliked: never a pair
    rows += [
        {"prompt": "conflict", "response": "Same answer", "label": True},
        {"prompt": "conflict", "response": "same  answer", "label": False},
    ]
    return from_rows(rows, Kind.BINARY), implied + 1


def test_pairs_from_thumbs() -> None:
    table, implied = _thumbs()
    res = pairs_from_binary(table)
    rep = res.report
    assert rep["candidates"] == implied
    assert rep["pairs_out"] + sum(rep["dropped"].values()) == implied
    assert rep["dropped"]["identical_responses"] == 1
    for r in res.table.to_pylist():
        assert text_key(r["chosen"]).startswith("good")  # type: ignore[union-attr]
        assert text_key(r["rejected"]).startswith("bad")  # type: ignore[union-attr]
    labels = table.column("label").to_pylist()
    d, u = sum(labels), len(labels) - sum(labels)
    assert rep["kto"]["ratio"] == f"{d}:{u}"
    ratio = rep["kto"]["desirable_weight"] * d / (rep["kto"]["undesirable_weight"] * u)
    assert 1.0 <= ratio <= 4 / 3 + 1e-9


def test_unpaired_kto() -> None:
    table, _ = _thumbs()
    res = unpaired_from_binary(table)
    assert res.table.num_rows == table.num_rows
    assert res.table.column("label").to_pylist() == table.column("label").to_pylist()
    pairs = pairs_from_binary(table)
    un = unpaired_from_pairs(pairs.table)
    # every response that is in a pair appears once with its label
    ups = {text_key(c) for c in pairs.table.column("chosen").to_pylist()}
    downs = {text_key(c) for c in pairs.table.column("rejected").to_pylist()}
    assert un.table.num_rows == len(ups) + len(downs)
    assert un.report["dropped"]["duplicate"] == 2 * pairs.table.num_rows - un.table.num_rows
