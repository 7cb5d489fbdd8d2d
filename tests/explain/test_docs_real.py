"""docs/explain.md's real-data tables are what `prefkit explain` computes (seed 0, defaults,
`--directions 0`): every number is re-derived here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prefkit.explain.data import votes_from_table
from prefkit.explain.effects import EffectOptions, design, feature_effects
from prefkit.io.detect import read
from prefkit.schema import Kind
from tests.conftest import REPO

NUM = r"([+-]\d+\.\d{3})"
ROW = re.compile(
    rf"^\| `(\w+)` \([^)]*\) \| {NUM} \[{NUM}, {NUM}\] \| (?:—|{NUM} \[{NUM}, {NUM}\]) \| "
    r"(yes|no) \((\d\.\d\d)\) \|$",
    re.M,
)


def _table(title: str) -> list[tuple[str, ...]]:
    text = (REPO / "docs" / "explain.md").read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n### ", start + 1)
    rows = ROW.findall(text[start : end if end > 0 else None])
    assert rows, f"no table under {title!r}"
    return rows


@pytest.mark.slow
@pytest.mark.parametrize(
    ("title", "rel"),
    [
        ("### HH-RLHF harmless-base", "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"),
        ("### PandaLM test set", "pandalm_testset/data/testset-v1.json"),
    ],
)
def test_documented_effects_are_reproduced(data_dir: Path, title: str, rel: str) -> None:
    v = votes_from_table(read(data_dir / rel).tables[Kind.COMPARISONS])
    eff = feature_effects(v, design(v), EffectOptions())
    by = {r["feature"]: r for r in eff.rows}
    rows = _table(title)
    assert [r[0] for r in rows] == [r["feature"] for r in eff.rows[: len(rows)]]
    for f, c, lo, hi, nl, nlo, nhi, sel, freq in rows:
        r = by[f]
        assert (f"{r['coef']:+.3f}", f"{r['ci_low']:+.3f}", f"{r['ci_high']:+.3f}") == (c, lo, hi)
        if nl:
            got = (r["coef_no_length"], r["ci_low_no_length"], r["ci_high_no_length"])
            assert tuple(f"{x:+.3f}" for x in got) == (nl, nlo, nhi)
        assert ("yes" if r["selected"] else "no", f"{r['selection_freq']:.2f}") == (sel, freq)
