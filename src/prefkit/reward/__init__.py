"""Reward models on a laptop: interpretable feature RM, embedding RM, honest evaluation.

See docs/reward.md. Heavy dependencies (sentence-transformers, torch) load lazily inside
:mod:`prefkit.reward.embed`.
"""

from __future__ import annotations

from prefkit.reward.data import PairData, pair_data
from prefkit.reward.evaluate import evaluate
from prefkit.reward.features import FEATURE_NAMES, featurize
from prefkit.reward.model import FeatureRM, LengthScorer, RandomScorer, Scorer, load_model

__all__ = [
    "FEATURE_NAMES",
    "FeatureRM",
    "LengthScorer",
    "PairData",
    "RandomScorer",
    "Scorer",
    "evaluate",
    "featurize",
    "load_model",
    "pair_data",
]
