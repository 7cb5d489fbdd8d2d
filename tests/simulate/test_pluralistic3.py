"""The `pluralistic3` scenario: three groups of unequal size with opposite tastes."""

from __future__ import annotations

from scipy.stats import spearmanr

from prefkit.schema import Kind
from prefkit.simulate import simulate


def test_pluralistic3_groups_sizes_and_opposite_orders() -> None:
    sim = simulate("pluralistic3", size=1500, seed=4, annotators=30)
    members = sim.truth["group_members"]
    assert {g: len(m) for g, m in members.items()} == {"quality": 15, "plain": 9, "formatted": 6}
    voters = set(sim.tables[Kind.COMPARISONS].column("annotator").to_pylist())
    assert set().union(*map(set, members.values())) == voters
    # each annotator's persona in the truth matches its group
    for g, m in members.items():
        assert all(sim.truth["annotators"][a]["params"]["group"] == g for a in m)
    bt = sim.truth["group_model_bt_strength"]
    models = sorted(bt["plain"])
    rho = spearmanr([bt["plain"][m] for m in models], [bt["formatted"][m] for m in models])[0]
    assert rho < 0.5  # the two minority groups order the models differently
    pooled = sim.truth["pooled_model_bt_strength"]
    assert set(pooled) == set(models)


def test_pluralistic3_is_deterministic() -> None:
    a = simulate("pluralistic3", size=300, seed=1, annotators=6)
    b = simulate("pluralistic3", size=300, seed=1, annotators=6)
    assert a.tables[Kind.COMPARISONS].equals(b.tables[Kind.COMPARISONS])
    assert a.truth == b.truth
