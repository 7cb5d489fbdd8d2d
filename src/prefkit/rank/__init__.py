"""Rank and aggregate: leaderboards from pairwise battles (Bradley–Terry, Davidson,
Rao–Kupper; exact sparse Newton fits; bootstrap, Hessian and sandwich intervals; rank
intervals; style control) and annotator aggregation (Dawid–Skene, MACE, GLAD, ...).

See docs/rank.md. Submodules import numpy/scipy; nothing heavy is imported here.
"""

from __future__ import annotations

__all__ = ["aggregate", "baselines", "bt", "ci", "data", "leaderboard", "run", "style"]
