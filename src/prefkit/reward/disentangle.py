"""Length- and style-disentangled reward heads (ODIN; Chatbot Arena's style control).

A reward model trained on one dataset learns that dataset's length rule: on HH harmless the
preferred answer is usually the shorter refusal, elsewhere the longer answer usually wins, so
a model that learned "shorter wins" scores below chance off its training set. Here the
*nuisance* features — length (`log_chars`, `log_words`) and markdown style (lists, headers,
bold: the covariates of Chatbot Arena's style control) — get their own head:

- every quality column (the other features; for the MiniLM model the embedding too) is
  **decorrelated** from the nuisance features within the training pairs: the weighted least
  squares fit `Δq ≈ Δn·A` is subtracted, so the quality head's reward difference has zero
  linear correlation with the length and style differences of the training pairs (ODIN's
  orthogonality constraint, exact for a linear head, taken on the differences a
  Bradley–Terry head sees; Chen et al., 2024, "ODIN: Disentangled Reward Mitigates Hacking in
  RLHF");
- the nuisance features enter the Bradley–Terry objective as **per-source nuisance terms**
  (one coefficient per nuisance feature and source: HH may reward short answers while another
  set rewards long ones), fitted jointly with the quality head;
- at scoring time the nuisance head is **dropped**: the reward is the quality head alone.

Because the quality head is a linear function of the raw features, a disentangled model is
saved as an ordinary linear model: the decorrelation moves weight onto the nuisance features
(`−A·β`), and nothing else changes in the model directory. Decorrelating the pair differences
rather than the responses pooled across prompts was measured on the simulator with a planted
length bias (benchmarks/RESULTS.md): pooled decorrelation lost to the plain model in some
seeds, pairwise did not.

Pure functions over arrays; see docs/reward.md ("Disentangled heads").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

NUISANCE_GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("log_chars", "log_words"),
    "style": ("bullets", "headers", "bold"),
}
SPECS = ("auto", "none", *NUISANCE_GROUPS)


def parse_spec(spec: str) -> tuple[str, ...] | None:
    """`--disentangle` value → nuisance groups (`()` for none), or None for `auto`.

    Accepts `auto`, `none`, or a comma list of groups (`length`, `style`, `length,style`);
    raises ValueError naming the known groups otherwise."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if parts == ["auto"]:
        return None
    if parts == ["none"]:
        return ()
    unknown = [p for p in parts if p not in NUISANCE_GROUPS]
    if unknown or not parts:
        raise ValueError(
            f"--disentangle takes auto, none or a comma list of {', '.join(NUISANCE_GROUPS)}; "
            f"got {spec!r}"
        )
    return tuple(g for g in NUISANCE_GROUPS if g in parts)


def spec_name(groups: Sequence[str]) -> str:
    """Groups → the `--disentangle` value that names them (`none` when empty)."""
    return ",".join(groups) if groups else "none"


def nuisance_names(groups: Sequence[str]) -> list[str]:
    return [n for g in groups for n in NUISANCE_GROUPS[g]]


def balanced_weights(source: NDArray[np.int64], weight: F64) -> tuple[F64, dict[int, float]]:
    """Source-balanced row weights: each source carries the same total weight (the
    expectation of sampling a source uniformly, then a row of it), rescaled so the weights
    average to the rows' own weights. Returns the weights and each source's multiplier."""
    srcs = np.unique(source)
    total = float(weight.sum()) or 1.0
    mult: dict[int, float] = {}
    out = weight.astype(np.float64).copy()
    for s in srcs.tolist():
        m = source == s
        ws = float(weight[m].sum())
        mult[int(s)] = total / (len(srcs) * ws) if ws > 0 else 0.0
        out[m] *= mult[int(s)]
    return out, mult


@dataclass(frozen=True)
class Decorrelation:
    """`Δq_resid = Δq − Δn·A` on pair differences: `coef` is A, shape (m nuisance, k)."""

    coef: F64

    def residual(self, dq: F64, dn: F64) -> F64:
        return np.asarray(dq - dn @ self.coef, dtype=np.float64)

    def back_projection(self, beta_q: F64) -> F64:
        """Weights on the nuisance features that a score `q_resid·β` puts there (−A·β)."""
        return np.asarray(-(self.coef @ beta_q), dtype=np.float64)


def decorrelate(dq: F64, dn: F64, w: F64 | None = None) -> Decorrelation:
    """Weighted least squares of every quality column's pair difference on the nuisance
    columns' pair differences, over the training pairs (no intercept: swapping a and b flips
    both signs). A Bradley–Terry head only ever sees differences, so this is the correlation
    that matters: it is removed within pairs, not across prompts (where, e.g., coding prompts
    get long answers with code blocks, which says nothing about which answer is better)."""
    sw = np.sqrt(np.ones(len(dq)) if w is None else w)[:, None]
    coef, *_ = np.linalg.lstsq(dn * sw, dq * sw, rcond=None)
    return Decorrelation(np.asarray(coef, dtype=np.float64))


def source_blocks(dn: F64, source: NDArray[np.int64], n_sources: int) -> F64:
    """Per-source nuisance columns: Δn copied into the block of the row's source, zeros
    elsewhere; shape (rows, n_sources·m), source-major."""
    m = dn.shape[1]
    out = np.zeros((dn.shape[0], n_sources * m))
    for s in range(n_sources):
        rows = source == s
        out[rows, s * m : (s + 1) * m] = dn[rows]
    return out
