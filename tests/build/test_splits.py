"""Leak-free splits: HH harmless by prompt, near-duplicate prompts, sources, annotators."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from prefkit.build.splits import (
    jaccard,
    near_duplicate_groups,
    near_duplicate_pairs,
    shingles,
    split,
)
from prefkit.schema import Kind, from_rows, messages_text
from tests.build._data import hh_harmless


@pytest.fixture(scope="module")
def hh() -> pa.Table:
    return hh_harmless()


def _pids(t: pa.Table) -> set[str]:
    return set(t.column("prompt_id").to_pylist())


def test_hh_split_by_prompt_is_leak_free(hh: pa.Table) -> None:
    res = split(hh, "prompt", test=0.2, val=0.1, seed=7)
    tr, te, va = (res.tables[k] for k in ("train", "test", "val"))
    assert tr.num_rows + te.num_rows + va.num_rows == hh.num_rows
    assert (
        not (_pids(tr) & _pids(te)) and not (_pids(tr) & _pids(va)) and not (_pids(te) & _pids(va))
    )
    assert res.report["shared_prompt_ids"] == 0
    # HH has repeated prompts, so a row-level split would leak
    assert len(_pids(hh)) < hh.num_rows
    assert te.num_rows == pytest.approx(0.2 * hh.num_rows, rel=0.1)
    assert va.num_rows == pytest.approx(0.1 * hh.num_rows, rel=0.15)
    again = split(hh, "prompt", test=0.2, val=0.1, seed=7)
    assert list(again.labels) == list(res.labels)
    other = split(hh, "prompt", test=0.2, val=0.1, seed=8)
    assert list(other.labels) != list(res.labels)
    # same rows in another order: the same assignment per row (deterministic by content)
    perm = np.random.default_rng(0).permutation(hh.num_rows)
    shuffled = split(hh.take(pa.array(perm)), "prompt", test=0.2, val=0.1, seed=7)
    by_id = dict(zip(hh.column("id").to_pylist(), res.labels.tolist(), strict=True))
    shuffled_ids = hh.take(pa.array(perm)).column("id").to_pylist()
    assert all(
        by_id[i] == lab for i, lab in zip(shuffled_ids, shuffled.labels.tolist(), strict=True)
    )


def _near_dup_prompts(seed: int = 0) -> tuple[pa.Table, list[int]]:
    """40 families of prompts: a base question and 3 light edits of it (near duplicates)."""
    rng = np.random.default_rng(seed)
    words = "apple river stone cloud engine garden market silver window forest piano rocket".split()
    rows, family = [], []
    for f in range(40):
        base = " ".join(rng.choice(words, size=14)) + f" question {f}"
        variants = [base, base + "?", base.replace(" ", " the ", 1), "please, " + base]
        for k, v in enumerate(variants):
            rows.append(
                {
                    "prompt": v,
                    "response_a": f"x{k}",
                    "response_b": f"y{k}",
                    "outcome": "a",
                    "source": "gen",
                }
            )
            family.append(f)
    return from_rows(rows, Kind.COMPARISONS), family


def _cross_split_near_dups(table: pa.Table, labels: list[str], threshold: float) -> int:
    sh = [shingles(messages_text(p)) for p in table.column("prompt").to_pylist()]
    n = 0
    for i in range(len(sh)):
        for j in range(i + 1, len(sh)):
            if labels[i] != labels[j] and jaccard(sh[i], sh[j]) >= threshold:
                n += 1
    return n


def test_near_duplicates_stay_together() -> None:
    table, family = _near_dup_prompts()
    assert len(set(table.column("prompt_id").to_pylist())) == 160  # all distinct prompt ids
    plain = split(table, "prompt", test=0.3, seed=1)
    assert _cross_split_near_dups(table, plain.labels.tolist(), 0.7) > 0  # leaks without it
    res = split(table, "prompt", test=0.3, seed=1, near_dup=True, threshold=0.7)
    assert _cross_split_near_dups(table, res.labels.tolist(), 0.7) == 0
    for f in set(family):
        assert len({lab for lab, g in zip(res.labels, family, strict=True) if g == f}) == 1
    assert res.report["near_duplicate_merges"] >= 40 * 3
    assert 0.15 < res.tables["test"].num_rows / table.num_rows < 0.45


def test_lsh_finds_all_pairs_above_threshold() -> None:
    table, _ = _near_dup_prompts(3)
    texts = [messages_text(p) for p in table.column("prompt").to_pylist()]
    found = {(i, j) for i, j, _ in near_duplicate_pairs(texts, 0.6)}
    sh = [shingles(t) for t in texts]
    truth = {
        (i, j)
        for i in range(len(sh))
        for j in range(i + 1, len(sh))
        if jaccard(sh[i], sh[j]) >= 0.6
    }
    assert found == truth
    # the linear-time grouping gives exactly the connected components of those pairs
    comp, merges = near_duplicate_groups(texts, 0.6)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, j in truth:
        parent[find(i)] = find(j)
    same_truth = {(i, j) for i in range(len(texts)) for j in range(i) if find(i) == find(j)}
    same_got = {(i, j) for i in range(len(texts)) for j in range(i) if comp[i] == comp[j]}
    assert same_got == same_truth
    assert merges == len(texts) - len(set(comp.tolist()))


def test_split_by_source_and_annotator_and_stratification() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(600):
        src = "big" if i < 450 else "small"
        rows.append(
            {
                "prompt": f"prompt {i % 300}",
                "response_a": "a",
                "response_b": f"b{i}",
                "outcome": "a",
                "source": src,
                "annotator": f"ann{rng.integers(12)}",
            }
        )
    table = from_rows(rows, Kind.COMPARISONS)
    res = split(table, "prompt", test=0.2, seed=3)
    for src, n in (("big", 450), ("small", 150)):
        got = res.report["splits"]["test"]["sources"].get(src, 0)
        assert got == pytest.approx(0.2 * n, abs=0.06 * n)  # each source split 80/20
    by_src = split(table, "source", test=0.3, seed=0)
    srcs = [set(t.column("source").to_pylist()) for t in by_src.tables.values()]
    assert not (srcs[0] & srcs[1])
    by_ann = split(table, "annotator", test=0.25, seed=0)
    anns = [set(t.column("annotator").to_pylist()) for t in by_ann.tables.values()]
    assert not (anns[0] & anns[1]) and all(anns)
