"""Evaluation metrics on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np

from prefkit.align.evaluate import idealized_ranking_accuracy, preference_metrics


def test_idealized_ranking_accuracy_known_cases() -> None:
    # reference prefers the rejected by 2 nats; the optimum adds logit(P)/beta
    rc, rr = np.array([-10.0, -10.0, -10.0]), np.array([-8.0, -8.0, -8.0])
    p = np.array([0.51, 0.6, 0.99])
    beta = 0.1
    # logit/beta: 0.4, 4.05, 45.9 -> corrected iff > 2: the last two
    assert math.isclose(idealized_ranking_accuracy(rc, rr, p, beta) or 0, 2 / 3)
    # a larger beta keeps the optimum closer to the reference: fewer fixed
    assert math.isclose(idealized_ranking_accuracy(rc, rr, p, 1.0) or 0, 1 / 3)
    assert idealized_ranking_accuracy(rc[:0], rr[:0], p[:0], beta) is None


def test_preference_metrics_counts_and_ties() -> None:
    pc, pr = np.array([-5.0, -9.0, -7.0, -3.0]), np.array([-6.0, -8.0, -7.0, -4.0])
    rc, rr = np.array([-6.0, -9.0, -7.0, -2.0]), np.array([-6.0, -9.0, -7.5, -4.0])
    tie = np.array([False, False, True, False])
    m = preference_metrics((pc, pr), (rc, rr), tie, np.ones(4), beta=0.5)
    # margins 0.5*((pc-rc)-(pr-rr)): 0.5, -0.5, [tie] -0.25, -0.5
    assert m["pairs"] == 4 and m["ties"] == 1
    assert math.isclose(m["reward_accuracy"], 1 / 3)
    assert math.isclose(m["tie_abs_margin_mean"], 0.25)
    assert math.isclose(m["ranking_accuracy_ref"], 1 / 3)  # only the last: -2 > -4
    assert math.isclose(m["ranking_accuracy_policy"], 2 / 3)  # first and last
