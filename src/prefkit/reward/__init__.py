"""Reward models on a laptop: features, embeddings (MiniLM), TRL; train, score, evaluate."""

from __future__ import annotations

__all__ = ["embed", "evaluate", "features", "model_dir", "train"]
