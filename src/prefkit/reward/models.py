"""Reward models with one interface: `score(prompts, responses) -> rewards`, `save(dir)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from prefkit.reward.features import Texts, response_features
from prefkit.reward.model_dir import ModelDirError, read_card

F64 = NDArray[np.float64]


class RewardModel(Protocol):
    backend: str

    def score(self, prompts: list[str], responses: list[str], batch_size: int = 64) -> F64: ...


class LengthModel:
    """Baseline: reward = log(1 + characters). Longer wins."""

    backend = "length"

    def score(self, prompts: list[str], responses: list[str], batch_size: int = 64) -> F64:
        return np.log1p(np.array([len(r) for r in responses], dtype=np.float64))


class FeatureModel:
    """Linear reward on standardized interpretable features (torch-free)."""

    backend = "features"

    def __init__(self, names: list[str], mean: F64, std: F64, beta: F64, se: F64) -> None:
        self.names, self.mean, self.std, self.beta, self.se = names, mean, std, beta, se

    def design(self, prompts: Texts, responses: Texts) -> F64:
        """Standardized features in the model's own order (a model saved with fewer or other
        features than this version computes still scores with exactly its own)."""
        x, names = response_features(prompts, responses)
        if names != self.names:
            col = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.names if n not in col]
            if missing:
                raise ModelDirError(
                    f"feature model uses features this prefkit does not compute: "
                    f"{', '.join(missing)}; retrain it with `prefkit rm train`"
                )
            x = x[:, [col[n] for n in self.names]]
        return (x - self.mean) / self.std

    def score(self, prompts: Texts, responses: Texts, batch_size: int = 64) -> F64:
        return np.asarray(self.design(prompts, responses) @ self.beta, dtype=np.float64)

    def coefficients(self) -> list[dict[str, float | str]]:
        """Coefficient per standardized feature with a 95% Wald CI from the Hessian."""
        return [
            {
                "feature": n,
                "coef": float(b),
                "se": float(s),
                "ci_low": float(b - 1.96 * s),
                "ci_high": float(b + 1.96 * s),
            }
            for n, b, s in zip(self.names, self.beta, self.se, strict=True)
        ]

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        np.savez(
            out / "features.npz",
            mean=self.mean,
            std=self.std,
            beta=self.beta,
            se=self.se,
            names=np.array(self.names),
        )

    @classmethod
    def load(cls, path: Path) -> FeatureModel:
        z = np.load(path / "features.npz")
        return cls([str(n) for n in z["names"]], z["mean"], z["std"], z["beta"], z["se"])


def embed_input(prompt: str, response: str) -> str:
    """Text the encoder sees: the response first (the part that differs), then the prompt."""
    return response + "\n\n[prompt] " + prompt


class EmbedModel:
    """Linear BT head on MiniLM embeddings of prompt+response (optionally plus features)."""

    backend = "embed"

    def __init__(
        self,
        w_emb: F64,
        features: FeatureModel | None,
        w_feat: F64 | None,
        cache_dir: str | None = None,
    ) -> None:
        self.w_emb, self.features, self.w_feat = w_emb, features, w_feat
        self.cache_dir = cache_dir
        self.truncated = 0

    def embed(self, prompts: list[str], responses: list[str], batch_size: int = 64) -> F64:
        from prefkit.reward.embed import embed_with_stats

        texts = [embed_input(p, r) for p, r in zip(prompts, responses, strict=True)]
        v, stats = embed_with_stats(texts, batch_size=batch_size, cache_dir=self.cache_dir)
        self.truncated += stats.truncated
        return v.astype(np.float64)

    def score(self, prompts: list[str], responses: list[str], batch_size: int = 64) -> F64:
        s = self.embed(prompts, responses, batch_size) @ self.w_emb
        if self.features is not None and self.w_feat is not None:
            s = s + self.features.design(prompts, responses) @ self.w_feat
        return np.asarray(s, dtype=np.float64)

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        np.savez(
            out / "embed_head.npz",
            w_emb=self.w_emb,
            w_feat=self.w_feat if self.w_feat is not None else np.zeros(0),
        )
        if self.features is not None:
            self.features.save(out)

    @classmethod
    def load(cls, path: Path) -> EmbedModel:
        z = np.load(path / "embed_head.npz")
        feats = FeatureModel.load(path) if (path / "features.npz").exists() else None
        wf = z["w_feat"] if z["w_feat"].size else None
        return cls(z["w_emb"], feats, wf)


def load_model(spec: str | Path) -> Any:
    """A reward model from a directory, or the built-in baseline `length`."""
    if str(spec) == "length":
        return LengthModel()
    path = Path(spec)
    card = read_card(path)
    backend = card["backend"]
    if backend == "features":
        return FeatureModel.load(path)
    if backend == "embed":
        em = EmbedModel.load(path)
        em.cache_dir = card.get("cache_dir")
        return em
    if backend == "trl":
        from prefkit.reward.trl_backend import TrlModel

        return TrlModel.load(path)
    raise ModelDirError(f"{path}: unknown backend {backend!r}")
