from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import simulate


@pytest.fixture(scope="session")
def clean_table() -> pa.Table:
    return simulate("clean", size=1500, seed=3).tables[Kind.COMPARISONS]


@pytest.fixture(scope="session")
def clean_file(clean_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(clean_table, tmp_path_factory.mktemp("rm") / "clean.parquet")
