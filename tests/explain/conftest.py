"""Simulated files and the scripted LLM server for the explain tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate, write_simulation
from tests.judge.conftest import Server, start_server

ICAI = "icai_synthetic/data/processed/synthetic"


@pytest.fixture(autouse=True)
def _caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding and LLM caches go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("PREFKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def planted() -> Simulation:
    return simulate("planted", size=4000, seed=3)


@pytest.fixture(scope="session")
def planted_dir(tmp_path_factory: pytest.TempPathFactory, planted: Simulation) -> Path:
    d = tmp_path_factory.mktemp("planted")
    write_simulation(planted, d)
    return d


@pytest.fixture(scope="session")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = simulate("noisy", size=600, seed=2).tables[Kind.COMPARISONS]
    return save(t, tmp_path_factory.mktemp("noisy") / "noisy.parquet")


@pytest.fixture(scope="session")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tests/judge/fake_openai.py on loopback; model `principled` answers explain's prompts."""
    s = start_server(tmp_path_factory.mktemp("llm") / "calls.log")
    yield s
    s.stop()
