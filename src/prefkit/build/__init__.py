"""Build training data: pairs from votes, ratings, rankings and thumbs with stated tie
policies, weights and margins; leak-free grouped splits; TRL/KTO export. See docs/build.md."""

from __future__ import annotations

from prefkit.build.pairs import (
    build_pairs,
    pairs_from_binary,
    pairs_from_rankings,
    pairs_from_ratings,
    pairs_from_votes,
    unpaired_from_binary,
    unpaired_from_pairs,
)
from prefkit.build.result import PAIRS_SCHEMA, REASONS, UNPAIRED_SCHEMA, BuildResult
from prefkit.build.weights import AnnotatorWeights, VoteModel, curriculum

__all__ = [
    "PAIRS_SCHEMA",
    "REASONS",
    "UNPAIRED_SCHEMA",
    "AnnotatorWeights",
    "BuildResult",
    "VoteModel",
    "build_pairs",
    "curriculum",
    "pairs_from_binary",
    "pairs_from_rankings",
    "pairs_from_ratings",
    "pairs_from_votes",
    "unpaired_from_binary",
    "unpaired_from_pairs",
]
