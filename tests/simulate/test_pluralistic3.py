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


def test_group_loglik_matches_the_rows_and_its_argmax_is_the_bayes_classifier() -> None:
    """truth `group_loglik`: the `quality` group has the default weights and no length bias,
    so its log-likelihood is recomputed here from the rows alone (meta quality_a/quality_b,
    Davidson with tie_nu, flips); and assigning each annotator to its most likely group
    recovers the true groups at 200 votes per annotator."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    sim = simulate("pluralistic3", size=6000, seed=2, annotators=30)
    gl = sim.truth["group_loglik"]
    t = sim.tables[Kind.COMPARISONS]
    p = sim.truth["annotators"]["ann-000"]["params"]
    beta, nu, flip = p["beta"], p["tie_nu"], p["flip"]
    mine: dict[str, float] = {}
    for ann, meta, out in zip(
        t.column("annotator").to_pylist(),
        t.column("meta").to_pylist(),
        t.column("outcome").to_pylist(),
        strict=True,
    ):
        m = dict(meta)
        z = beta * (float(m["quality_a"]) - float(m["quality_b"]))
        ea, eb = np.exp(z / 2), np.exp(-z / 2)
        pa, pb, pt = ea / (ea + eb + nu), eb / (ea + eb + nu), nu / (ea + eb + nu)
        prob = {"a": (1 - flip) * pa + flip * pb, "b": (1 - flip) * pb + flip * pa, "tie": pt}
        mine[ann] = mine.get(ann, 0.0) + float(np.log(prob[out]))
    assert set(mine) == set(gl)
    for ann, v in mine.items():  # meta utilities carry 4 decimals
        assert abs(gl[ann]["quality"] - v) < 0.02 + 1e-3 * abs(v)
    truth = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    ann = sorted(gl)
    best = [max(gl[a], key=gl[a].get) for a in ann]
    assert adjusted_rand_score([truth[a] for a in ann], best) > 0.9
