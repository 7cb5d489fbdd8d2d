"""Simulated preference data with known ground truth (see docs/simulate.md).

from prefkit.simulate import simulate, write_simulation, SCENARIOS
sim = simulate("noisy", size=20_000, seed=0)
sim.tables[Kind.COMPARISONS], sim.truth["flipped_ids"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from prefkit.schema import Kind
from prefkit.simulate.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Scenario", "Simulation", "simulate", "write_simulation"]


@dataclass(frozen=True)
class Simulation:
    """Canonical tables (one per feedback kind) and the truth they were generated from."""

    scenario: str
    seed: int
    tables: dict[Kind, pa.Table]
    truth: dict[str, Any]


def simulate(scenario: str, size: int | None = None, seed: int = 0, **overrides: Any) -> Simulation:
    """Generate scenario `scenario` with `size` rows of its main table (default per scenario).

    Keyword overrides change the scenario's options (see ``SCENARIOS[name].options``),
    e.g. ``simulate("noisy", votes_per_pair=1)``. Deterministic for a given seed.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    sc = SCENARIOS[scenario]
    unknown = set(overrides) - set(sc.options)
    if unknown:
        raise ValueError(
            f"unknown option(s) for {scenario}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(sc.options))}"
        )
    if int(seed) < 0:
        raise ValueError("seed must be >= 0")
    n = sc.default_size if size is None else int(size)
    opts = dict(sc.options) | overrides
    rng = np.random.default_rng([int(seed), _stable(scenario)])
    built = sc.build(scenario, n, int(seed), rng, opts)
    options: dict[str, Any] = {k: v for k, v in opts.items() if k not in ("groups", "mix")}
    if "mix" in opts:
        options["mix"] = dict(opts["mix"])
    truth: dict[str, Any] = {"scenario": scenario, "seed": int(seed), "size": n} | built.truth
    truth["options"] = options
    return Simulation(scenario, int(seed), built.tables, truth)


def _stable(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "little")


def write_simulation(sim: Simulation, out_dir: str | Path) -> list[Path]:
    """Write `<kind>.parquet` for every table (canonical, via prefkit.io.save) and truth.json."""
    from prefkit.io.canonical import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save(t, out / f"{k.value}.parquet", k) for k, t in sim.tables.items()]
    truth_path = out / "truth.json"
    truth_path.write_text(
        json.dumps(sim.truth, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    paths.append(truth_path)
    return paths
