"""One real local Ray cluster for every Ray test (Ray takes tens of seconds to start here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """Start `ray.init(num_cpus=2)` once; yield its address (CLI subprocesses join it through
    RAY_ADDRESS); shut it down at the end of the session."""
    import ray

    from prefkit.engine import ray_init

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ray_init()  # prefkit's Ray Data settings (order preserved, no progress bars)
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
