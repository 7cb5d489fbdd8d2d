"""Stance and specificity features of the bt-mixture design (`prefkit.rank.stance`): hand-made
texts whose hedges and sentences are known, and the simulator's responses whose hidden hedging
and padding are known."""

from __future__ import annotations

import numpy as np
import pytest

from prefkit.rank.mixture import MIXTURE_STANCE, design_responses
from prefkit.rank.stance import STANCE_NAMES, stance_features
from prefkit.schema import Kind
from prefkit.simulate import simulate


def _row(prompt: str, text: str) -> dict[str, float]:
    x, names = stance_features([prompt], [text])
    return dict(zip(names, x[0].tolist(), strict=True))


def test_hedged_and_boosted_texts() -> None:
    plain = _row("", "The boiling point of water at sea level is 100 degrees Celsius.")
    hedged = _row("", "As far as I know, it is probably about 100 degrees, but I could be wrong.")
    boosted = _row("", "It is definitely 100 degrees. Obviously, everyone knows this.")
    assert plain["epistemic"] == 0 and hedged["epistemic"] > 0
    assert hedged["hedges"] > plain["hedges"] and hedged["hedges"] > boosted["hedges"]
    assert boosted["boosters"] > max(plain["boosters"], hedged["boosters"])


def test_specific_and_generic_sentences() -> None:
    text = (
        "Sure. The Eiffel Tower in Paris is 330 metres tall. It was finished in 1889. "
        "Many people wonder about things like this. I hope this helps, let me know if you "
        "have any other questions."
    )
    r = _row("How tall is the Eiffel Tower?", text)
    assert r["sentences"] == 5
    # "Sure." and the two closing sentences carry no number, name or prompt word
    assert r["specific_sentences"] == 2 and r["generic_sentences"] == 3
    assert r["opener"] == 1 and r["closers"] > 0 and r["vague"] > 0
    # a prompt word makes an otherwise plain sentence specific
    assert _row("how to water a cactus", "Water it rarely.")["specific_sentences"] == 1
    assert _row("how to bake bread", "Water it rarely.")["generic_sentences"] == 1
    # code blocks are not sentences
    code = _row("", "Here is one:\n\n```python\ndef f(x):\n    return x. y\n```\n\nIt works.")
    assert code["sentences"] == 2


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_predict

    p = cross_val_predict(LinearRegression(), x, y, cv=5)
    return float(1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


@pytest.mark.slow
def test_stance_tracks_the_simulators_hidden_hedging_and_padding() -> None:
    """On simulated responses (truth: each response's hedge flag, filler sentences and detail
    items), the epistemic count separates hedged from unhedged answers, and the stance columns
    add what the reward features miss: cross-validated R² of filler and detail rises."""
    import prefkit.simulate.scenarios as scen_mod
    from prefkit.reward.features import response_features
    from prefkit.simulate.world import ATTRIBUTES

    seen: dict[str, object] = {}
    orig = scen_mod._group_loglik

    def spy(*args: object) -> object:
        seen["resp"] = args[1]
        return orig(*args)  # type: ignore[arg-type]

    scen_mod._group_loglik = spy  # type: ignore[assignment]
    try:
        simulate("pluralistic", size=1200, seed=3, annotators=6)
    finally:
        scen_mod._group_loglik = orig  # type: ignore[assignment]
    resp = seen["resp"]
    texts = resp.text  # type: ignore[attr-defined]
    attrs = resp.attrs  # type: ignore[attr-defined]
    x, names = stance_features([""] * len(texts), texts)
    hedge = attrs[:, ATTRIBUTES.index("hedge")] > 0
    epi = x[:, names.index("epistemic")]
    assert (epi[hedge] > 0).mean() > 0.95 and (epi[~hedge] > 0).mean() < 0.05
    base, _ = response_features([""] * len(texts), texts)
    for attr, gain in (("filler", 0.2), ("detail", 0.1)):
        y = attrs[:, ATTRIBUTES.index(attr)]
        assert _r2(np.hstack([base, x]), y) > _r2(base, y) + gain, attr


def test_mixture_design_has_the_stance_columns_and_can_leave_them_out() -> None:
    t = simulate("pluralistic", size=400, seed=1, annotators=4).tables[Kind.COMPARISONS]
    with_stance = design_responses(t)
    without = design_responses(t, stance=())
    assert set(MIXTURE_STANCE) <= set(STANCE_NAMES)
    assert set(MIXTURE_STANCE) <= set(with_stance.features)
    assert not set(MIXTURE_STANCE) & set(without.features)
    assert with_stance.data.x.shape[1] == without.data.x.shape[1] + len(
        [f for f in MIXTURE_STANCE if f in with_stance.features]
    )
