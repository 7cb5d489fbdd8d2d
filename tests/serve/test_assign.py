"""Assignment policies and the Bradley–Terry fit behind the active policy."""

from __future__ import annotations

import numpy as np

from prefkit.serve.assign import bt_scores, choose, uncertainty


def test_bt_matches_choix_mle() -> None:
    import choix

    rng = np.random.default_rng(0)
    n = 6
    true = np.linspace(-1.5, 1.5, n)
    w, lo, data = [], [], []
    for _ in range(3000):
        i, j = rng.choice(n, 2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        a, b = (i, j) if rng.random() < p else (j, i)
        w.append(a)
        lo.append(b)
        data.append((int(a), int(b)))
    ours = bt_scores(w, lo, n, iters=5000, prior=0.0)
    ref = choix.mm_pairwise(n, data, max_iter=5000, tol=1e-10)
    np.testing.assert_allclose(ours - ours.mean(), ref - ref.mean(), atol=1e-4)
    assert np.corrcoef(ours, true)[0, 1] > 0.98


def test_prior_keeps_unbeaten_finite() -> None:
    s = bt_scores([0, 0, 0], [1, 1, 1], 3)
    assert np.all(np.isfinite(s)) and s[0] > s[2] > s[1]


def test_active_prefers_uncertain_pairs() -> None:
    scores = np.array([2.0, -2.0, 0.1, 0.0])
    u = uncertainty(np.array([0, 2, 0]), np.array([1, 3, 3]), scores)
    assert np.argmax(u) == 1 and u[0] < 0.1
    k = choose("active", [10, 11, 12], [0, 1, 2], [0, 0, 0], 0, 3, list(u))
    assert k == 1
    # least judged: fewest assignments first, then campaign order
    assert choose("least_judged", [10, 11, 12], [0, 1, 2], [2, 1, 1], 0, 3) == 1
    # round robin: annotators start at different offsets
    starts = {choose("round_robin", list(range(20)), list(range(20)), [0] * 20, a, 20) for a in range(4)}  # fmt: skip
    assert len(starts) == 4
    assert choose("least_judged", [], [], [], 0, 0) is None
