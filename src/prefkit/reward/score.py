"""`rm score` batch by batch: the per-batch function both engines run (`prefkit.engine`).

`BatchScorer(model)` is built once per worker (one model in memory per worker, on a GPU when
the Ray cluster has one) and called on Arrow batches of canonical rows; it returns the same
rows with `reward_a`/`reward_b` (comparisons) or `reward` (ratings, binary) added — null where
the response is null — plus two bookkeeping columns the caller sums and drops: rows whose
scored text is empty (`EMPTY`) and texts the model truncated (`TRUNCATED`, on the batch's
first row). A row's reward depends on that row only, so every batching gives the same rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyarrow as pa

EMPTY = "_prefkit_empty"
TRUNCATED = "_prefkit_truncated"
BOOKKEEPING = (EMPTY, TRUNCATED)


def sides(schema: pa.Schema) -> list[str]:
    """'a' and 'b' for comparisons, '' for one-response kinds."""
    return ["a", "b"] if "response_a" in schema.names else [""]


class BatchScorer:
    """Scores batches with one reward model (`model`: a loaded model, or a spec that
    `prefkit.reward.models.load_model` loads in the worker)."""

    def __init__(self, model: Any) -> None:
        if isinstance(model, str):
            from prefkit.reward.models import load_model

            model = load_model(model)
        self.model = model

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        from prefkit.audit.frame import joined_text
        from prefkit.reward.features import feature_columns

        n = batch.num_rows
        prompts = joined_text(batch.column("prompt"))
        columnar = getattr(self.model, "backend", "") == "features"  # scores Arrow columns
        empty = np.zeros(n, dtype=np.int64)
        before = int(getattr(self.model, "truncated", 0))
        out = batch
        for side in sides(batch.schema):
            col = f"response_{side}" if side else "response"
            raw = batch.column(col)
            valid = np.asarray(pc.is_valid(raw), dtype=bool)
            have = np.flatnonzero(valid)
            mask = pa.array(valid)
            resp = joined_text(raw.filter(mask))
            pr = prompts.filter(mask)
            empty[have[feature_columns(pr, resp, ["empty"])["empty"] > 0]] += 1
            full = np.full(n, np.nan)
            if have.size:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # truncation: counted below
                    if columnar:
                        full[have] = self.model.score(pr, resp)
                    else:
                        full[have] = self.model.score(pr.to_pylist(), resp.to_pylist())
            name = f"reward_{side}" if side else "reward"
            out = out.append_column(name, pa.array(full, pa.float64(), mask=np.isnan(full)))
        truncated = np.zeros(n, dtype=np.int64)
        if n:
            truncated[0] = int(getattr(self.model, "truncated", 0)) - before
        out = out.append_column(EMPTY, pa.array(empty))
        return out.append_column(TRUNCATED, pa.array(truncated))


def wants_gpu(model: str) -> bool:
    """Whether `model` (a model directory or `length`) runs a neural network (embed, trl)."""
    if model == "length":
        return False
    from pathlib import Path

    from prefkit.reward.model_dir import read_card

    return str(read_card(Path(model))["backend"]) in ("embed", "trl")
