"""Data and tiny causal LMs for the align tests (the model helpers live in tests/tiny_lm.py)."""

from __future__ import annotations

import gzip
import json
from typing import Any

from tests.conftest import DATA
from tests.tiny_lm import checkpoint, model, tokenizer

__all__ = ["checkpoint", "model", "tokenizer"]

HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"
PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"


def hh_rows(n: int | None = None) -> list[dict[str, Any]]:
    """HH-RLHF harmless-base test as TRL rows via the io and build stages (prefix = prompt)."""
    from prefkit.build import build_pairs
    from prefkit.build.export import to_trl
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    res = read(HH_HARMLESS)
    table = res.tables[Kind.COMPARISONS]
    if n is not None:
        table = table.slice(0, n)
    rows: list[dict[str, Any]] = to_trl(build_pairs(table).table, conversational=False).to_pylist()
    return rows


def raw_hh_texts(n: int) -> list[str]:
    out = []
    with gzip.open(HH_HARMLESS, "rt", encoding="utf-8") as fh:
        for k, line in enumerate(fh):
            if k >= n:
                break
            rec = json.loads(line)
            out += [rec["chosen"], rec["rejected"]]
    return out


def texts_of(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r[k]) for r in rows for k in ("prompt", "chosen", "rejected")]
