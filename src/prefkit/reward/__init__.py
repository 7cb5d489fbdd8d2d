"""Reward models on a laptop: features, embeddings (MiniLM), TRL; train, score, evaluate.

See docs/reward.md. Heavy dependencies (sentence-transformers, torch, trl) load lazily.
"""

from __future__ import annotations

__all__ = ["data", "embed", "evaluate", "features", "model_dir", "models", "train"]
