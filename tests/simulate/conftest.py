"""One simulation per session: `noisy` at 20,000 rows and `arena` at its default size."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate

# PREFKIT_SIM_SEED runs the statistical tests on another world (robustness checks by hand).
SEED = int(os.environ.get("PREFKIT_SIM_SEED", "0"))


@pytest.fixture(scope="session")
def noisy() -> Simulation:
    return simulate("noisy", size=20_000, seed=SEED)


@pytest.fixture(scope="session")
def arena() -> Simulation:
    return simulate("arena", seed=SEED)


@pytest.fixture(scope="session")
def noisy_cols(noisy: Simulation) -> dict[str, Any]:
    """Plain numpy columns of the noisy comparisons, plus parsed meta."""
    t = noisy.tables[Kind.COMPARISONS]
    meta = [dict(m) for m in t.column("meta").to_pylist()]
    ta = [r[0]["content"] for r in t.column("response_a").to_pylist()]
    tb = [r[0]["content"] for r in t.column("response_b").to_pylist()]
    return {
        "id": np.array(t.column("id").to_pylist()),
        "annotator": np.array(t.column("annotator").to_pylist()),
        "outcome": np.array(t.column("outcome").to_pylist()),
        "first_a": np.array(t.column("shown_first").to_pylist()) == "a",
        "prompt": [p[0]["content"] for p in t.column("prompt").to_pylist()],
        "text_a": ta,
        "text_b": tb,
        "len_a": np.array([len(x) for x in ta], dtype=float),
        "len_b": np.array([len(x) for x in tb], dtype=float),
        "pair": np.array([m["pair_id"] for m in meta]),
        "true_pref": np.array([float(m["true_pref"]) for m in meta]),
        "qa": np.array([float(m["quality_a"]) for m in meta]),
        "qb": np.array([float(m["quality_b"]) for m in meta]),
        "meta_keys": set().union(*(m.keys() for m in meta)),
    }
