"""Shared fixtures: paths to ../shared/data, a CLI runner, simulated data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
ARTIFACTS = REPO / "test-artifacts"  # screenshots and reports for review (git-ignored)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data not found at {DATA}; tests read ../shared/data in place")
    return DATA


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_executable() -> str:
    """Debian's chromium, or a test failure: never let Playwright fall back to a browser of
    its own (`executable_path=None` would)."""
    import shutil

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("Debian's chromium is required (make install runs scripts/system-deps.sh)")
    return exe
